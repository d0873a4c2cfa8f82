/**
 * What the CMS hears about an infer answer: the detection as it happened (imageDetection),
 * or, when the display's session moved on while the frame was out, a patch of the session
 * the frame belonged to (patchSession); a later run of a vehicle visit that changed its fused
 * attributes is a patchSession of the changed fields. The detection is flattened here too: infer already
 * answers flat, but the CMS contract must hold even against an infer of another version
 * (or a misbehaving one).
 */
import { flatDetection, type SubscribePayload, type WorkerMessage } from '@detector-worker/shared/protocol/messages';
import type { GroupMember, GroupResult } from '../infer-link/frame-group.js';

/** What a message needs to know of the subscription an answer is for. */
export interface ResultTarget extends GroupMember {
  readonly payload: Pick<SubscribePayload, 'modelId' | 'modelName'>;
}

/** The CMS message for one member's answer; null when the answer carries no detection. */
export function resultMessage(r: GroupResult<ResultTarget>): WorkerMessage | null {
  if (!r.answer.detection || typeof r.answer.detection !== 'object' || Array.isArray(r.answer.detection)) return null;
  const detection = flatDetection(r.answer.detection);
  const current = r.subscription.sessionId;
  // A visit's later run changed fused attributes: patch the display's session, never a second event.
  if (r.patch) return r.sessionAtSend === null ? null : { type: 'patchSession', sessionId: r.sessionAtSend, data: { currentCar: detection } };
  if (r.sessionAtSend !== null && r.sessionAtSend !== current) {
    return { type: 'patchSession', sessionId: r.sessionAtSend, data: { currentCar: detection } };
  }
  return {
    type: 'imageDetection',
    subscriptionIdentifier: r.subscription.id,
    timestamp: r.frame.capturedAt.toISOString(),
    data: { detection, modelId: r.subscription.payload.modelId, modelName: r.subscription.payload.modelName },
  };
}

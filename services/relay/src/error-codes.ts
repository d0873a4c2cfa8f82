/**
 * Every code the relay raises or answers, with its status: the one place they are written.
 * Make errors with `coded('CAMERA_NOT_FOUND', message)`.
 */
import { SHARED_ERRORS } from '@detector-worker/shared/error-codes';
import { CodedError, type ErrorCatalogue } from '@detector-worker/shared/errors';

export const RELAY_ERRORS = {
  ...SHARED_ERRORS,
  UNAUTHORIZED: { status: 401, surface: 'http', message: 'a valid token is required', description: 'RELAY_TOKEN set and no / wrong token (`?token=` or bearer header) on an HTTP route' },
  CAMERA_NOT_FOUND: { status: 404, surface: 'http', message: 'no such subscription', description: '/camera/:id/image for a camera no subscription has' },
  NO_FRAME: { status: 404, surface: 'http', message: 'no frame yet', description: '/camera/:id/image before the camera delivered its first frame' },
} as const satisfies ErrorCatalogue;

export type RelayErrorCode = keyof typeof RELAY_ERRORS;

export const coded = CodedError.factory(RELAY_ERRORS);

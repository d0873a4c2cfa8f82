#!/usr/bin/env bash
# Drives every route of the infer API with curl, as a person would, and checks status codes
# and JSON fields. Starts its own infer on a free loopback port; builds a test archive from
# the fixture models. Run after `npm run build`:  bash test/curl-api.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=${FIXTURES_DIR:-$ROOT/../shared/fixtures}
if [ ! -f "$FIX/models/yolov8n_fp32.onnx" ]; then
  if [ "${REQUIRE_FIXTURES:-}" = 1 ]; then echo "fixtures missing under $FIX (REQUIRE_FIXTURES=1)" >&2; exit 1; fi
  echo "SKIP: fixtures missing under $FIX"; exit 0
fi
command -v curl >/dev/null || { echo "curl is not installed (apt-get install -y curl)" >&2; exit 1; }

WORK=$(mktemp -d)
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
BASE="http://127.0.0.1:$PORT"
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# Test archives: the standard two-level pipeline, and one with a .pt model.
node --input-type=module -e "
import { readFileSync } from 'node:fs';
import { writeMpta, standardPipeline } from '$ROOT/testkit/dist/mpta.js';
const files = { 'yolov8n_fp32.onnx': readFileSync('$FIX/models/yolov8n_fp32.onnx'), 'car_color_cls.onnx': readFileSync('$FIX/models/car_color_cls.onnx') };
await writeMpta('$WORK', 'cars.mpta', { pipeline: standardPipeline(), files });
const pt = standardPipeline(); pt.pipeline.modelFile = 'yolov8n.pt'; pt.pipeline.branches = [];
await writeMpta('$WORK', 'pt.mpta', { pipeline: pt, files: { 'yolov8n.pt': 'not really a torch file' } });
"
printf 'this is not an image' > "$WORK/not-image.txt"
head -c 20000 "$FIX/images/bus.jpg" > "$WORK/truncated.jpg"

INFER_PORT=$PORT INFER_HOST=127.0.0.1 MODEL_CACHE_DIR="$WORK/cache" LOG_LEVEL=${LOG_LEVEL:-warn} LOG_PRETTY=0 \
  node "$ROOT/services/infer/dist/main.js" &
PID=$!
for _ in $(seq 1 100); do curl -fs "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

FAILS=0
PASSES=0
# call NAME EXPECTED_STATUS JS_CHECK curl-args...   (JS_CHECK sees the parsed body as `b`)
call() {
  local name=$1 want=$2 check=$3; shift 3
  local status
  status=$(curl -s -o "$WORK/body" -w '%{http_code}' "$@") || status=000
  if [ "$status" != "$want" ]; then
    echo "FAIL $name: status $status, expected $want: $(head -c 400 "$WORK/body")"; FAILS=$((FAILS + 1)); return
  fi
  if [ -n "$check" ] && ! node -e "const b=JSON.parse(require('fs').readFileSync('$WORK/body','utf8')); if(!($check)){console.error(JSON.stringify(b).slice(0,600)); process.exit(1)}"; then
    echo "FAIL $name: check failed: $check"; FAILS=$((FAILS + 1)); return
  fi
  echo "ok   $name"; PASSES=$((PASSES + 1))
}

CARS="file://$WORK/cars.mpta"
JPEG=(-H 'Content-Type: image/jpeg')

call 'GET /healthz' 200 "b.status==='ok'" "$BASE/healthz"
call 'GET /readyz' 200 "b.status==='ready'" "$BASE/readyz"
call 'GET /v1/models (empty)' 200 "Array.isArray(b.models) && b.models.length===0" "$BASE/v1/models"
call 'infer unknown model without modelUrl -> 404' 404 "b.code==='MODEL_NOT_FOUND'" "${JPEG[@]}" --data-binary @"$FIX/images/bus.jpg" "$BASE/v1/models/101/infer"
call 'PUT /v1/models/101 loads' 200 "b.state==='ready' && b.nodes.length===2" -X PUT -H 'Content-Type: application/json' -d "{\"modelUrl\":\"$CARS\"}" "$BASE/v1/models/101"
call 'PUT again is idempotent' 200 "b.state==='ready'" -X PUT -H 'Content-Type: application/json' -d "{\"modelUrl\":\"$CARS\"}" "$BASE/v1/models/101"
call 'GET /v1/models/101' 200 "b.state==='ready' && b.modelUrl.startsWith('file://') && b.loadMs>0 && b.archiveBytes>0" "$BASE/v1/models/101"
call 'GET /v1/models lists it' 200 "b.models.length===1 && b.stats.loads===1 && b.stats.downloads===1" "$BASE/v1/models"
call 'infer a 1080p photo (body = image)' 200 \
  "b.modelId==='101' && b.result.class==='car' && b.result.bbox.length===4 && b.detection.class==='car' && b.result.branch_results.car_color_cls_v1 && b.detection.carColor && b.timings.total>0" \
  "${JPEG[@]}" --data-binary @"$FIX/images/parking_plate_1080p.jpg" "$BASE/v1/models/101/infer?subscriptionIdentifier=display-1;cam-1&requestId=r1"
call 'infer with context headers and modelUrl header' 200 "b.result!==null" \
  "${JPEG[@]}" -H "X-Model-Url: $CARS" -H 'X-Display-Id: display-1' -H 'X-Session-Id: 42' --data-binary @"$FIX/images/traffic_cam_30s.jpg" "$BASE/v1/models/101/infer"
call 'infer multipart (image + context)' 200 "b.result && b.result.detections.length>=3" \
  -F "image=@$FIX/images/traffic_road_1024x576.jpg;type=image/jpeg" --form-string 'context={"subscriptionIdentifier":"display-2;cam-9","requestId":"r2"}' "$BASE/v1/models/101/infer"
call 'infer a photo with no vehicle -> null result' 200 "b.result===null && b.detection===null" \
  "${JPEG[@]}" --data-binary @"$FIX/images/car_front_plate_closeup.jpg" "$BASE/v1/models/101/infer"
call 'empty body -> 400' 400 "b.code==='IMAGE_EMPTY'" "${JPEG[@]}" --data-binary '' "$BASE/v1/models/101/infer"
call 'non-image body -> 4xx' 422 "b.code==='IMAGE_INVALID'" "${JPEG[@]}" --data-binary @"$WORK/not-image.txt" "$BASE/v1/models/101/infer"
call 'truncated JPEG -> 422' 422 "b.code==='IMAGE_INVALID'" "${JPEG[@]}" --data-binary @"$WORK/truncated.jpg" "$BASE/v1/models/101/infer"
call 'wrong content type -> 415' 415 "b.code==='UNSUPPORTED_MEDIA_TYPE'" -H 'Content-Type: text/plain' --data-binary 'hello' "$BASE/v1/models/101/infer"
call 'bad modelId -> 400' 400 "b.code==='BAD_REQUEST'" "${JPEG[@]}" --data-binary @"$FIX/images/bus.jpg" "$BASE/v1/models/a%20b/infer"
call '.pt model -> 422 with export hint' 422 "b.code==='MODEL_FORMAT_UNSUPPORTED' && b.message.includes('yolo export')" \
  -X PUT -H 'Content-Type: application/json' -d "{\"modelUrl\":\"file://$WORK/pt.mpta\"}" "$BASE/v1/models/pt"
call 'GET failed model shows the reason' 200 "b.state==='failed' && b.error.code==='MODEL_FORMAT_UNSUPPORTED'" "$BASE/v1/models/pt"
call 'unreachable modelUrl -> 502' 502 "b.code==='MODEL_DOWNLOAD_FAILED'" \
  -X PUT -H 'Content-Type: application/json' -d '{"modelUrl":"http://127.0.0.1:9/none.mpta"}' "$BASE/v1/models/unreachable"
call 'DELETE /v1/models/101' 200 "b.state==='evicted'" -X DELETE "$BASE/v1/models/101"
call 'GET evicted -> 404' 404 "b.code==='MODEL_NOT_FOUND'" "$BASE/v1/models/101"
call 'DELETE unknown -> 404' 404 "b.code==='MODEL_NOT_FOUND'" -X DELETE "$BASE/v1/models/nope"
call 'infer reloads from modelUrl after eviction' 200 "b.result.class==='car'" "${JPEG[@]}" --data-binary @"$FIX/images/parking_plate_1080p.jpg" "$BASE/v1/models/101/infer?modelUrl=$CARS"
call 'GET /openapi.json' 200 "b.openapi && b.paths['/v1/models/{modelId}/infer']" "$BASE/openapi.json"

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]

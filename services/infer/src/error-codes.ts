/**
 * Every code the infer service and the mpta tool raise, with its status: the one place they
 * are written. Make errors with `coded('MODEL_NOT_FOUND', message, details)`. The `http`
 * codes are the API's public interface: test/error-catalogue.test.ts keeps them and the
 * README's error table equal.
 */
import { SHARED_ERRORS } from '@detector-worker/shared/error-codes';
import { CodedError, type ErrorCatalogue } from '@detector-worker/shared/errors';

const http = 'http' as const;
const cli = 'cli' as const;

export const INFER_ERRORS = {
  ...SHARED_ERRORS,

  // the request itself
  BAD_REQUEST: { status: 400, surface: http, message: 'bad request', description: 'bad parameters (a raw RGB body without a whole-number width and height); malformed HTTP or multipart, a body that does not match its Content-Length, too many multipart parts' },
  IMAGE_EMPTY: { status: 400, surface: http, message: 'request body is empty: send the image bytes', description: 'empty body, or a multipart request without an image part' },
  MODEL_ID_INVALID: { status: 400, surface: http, message: 'modelId must be 1-128 characters of letters, digits, "_", "-" or "."', description: 'a model id outside the allowed characters or length' },
  UNAUTHORIZED: { status: 401, surface: http, message: 'a valid bearer token is required', description: 'INFER_TOKEN set and no / wrong bearer token' },
  NOT_FOUND: { status: 404, surface: http, message: 'no such route', description: 'unknown route' },
  REQUEST_TIMEOUT: { status: 408, surface: http, message: 'the request was not received in time', description: 'headers or the whole request not in within INFER_HEADERS_TIMEOUT_MS / INFER_REQUEST_TIMEOUT_MS' },
  BODY_TOO_LARGE: { status: 413, surface: http, message: 'request body is too large', description: 'body over MAX_IMAGE_BYTES' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, surface: http, message: 'unsupported content type', description: 'not an image type we decode; multipart with a wrong content type' },
  HEADERS_TOO_LARGE: { status: 431, surface: http, message: 'request headers are too large', description: "request headers over Node's limit" },
  OVERLOADED: { status: 429, surface: http, message: 'inference queue is full; retry later', description: 'inference queue over INFER_MAX_QUEUE (+ Retry-After)' },
  SHUTTING_DOWN: { status: 503, surface: http, message: 'this instance is shutting down; retry on another', description: 'the instance is draining after SIGTERM (+ Retry-After)' },
  INTERNAL: { status: 500, surface: http, message: 'internal error', description: 'an unexpected error; its message is logged, not passed on' },

  // the image
  IMAGE_INVALID: { status: 422, surface: http, message: 'image could not be decoded', description: 'not an image, truncated image, a raw RGB body whose length is not width*height*3' },
  IMAGE_TOO_LARGE: { status: 413, surface: http, message: 'image exceeds the pixel limit', description: 'decoded size over MAX_IMAGE_PIXELS, read from the image header (a raw RGB body: from its width and height)' },
  IMAGE_UNSUPPORTED: { status: 415, surface: http, message: 'image format is not supported (jpeg, png, webp)', description: 'an image format we do not decode' },
  CROP_EMPTY: { status: 422, surface: http, message: 'crop box has no area inside the image', description: 'a focus or detection box that lies outside the image' },

  // the model URL and download
  MODEL_URL_INVALID: { status: 400, surface: http, message: 'model URL is not valid', description: 'modelUrl not a URL, or a scheme other than http, https, file' },
  MODEL_URL_FORBIDDEN: { status: 403, surface: http, message: 'model URL is not allowed', description: 'file:// disabled, host not in MODEL_URL_ALLOW' },
  MODEL_NOT_FOUND: { status: 404, surface: http, message: 'model is not loaded', description: 'model not loaded and no modelUrl' },
  MODEL_TOO_LARGE: { status: 413, surface: http, message: 'the model archive is too large', description: 'archive over MODEL_MAX_MB' },
  MODEL_DOWNLOAD_FAILED: { status: 502, surface: http, message: 'model download failed', description: 'archive URL unreachable, reset, short body, redirect loop, huge headers, HTTP error' },
  MODEL_DOWNLOAD_TIMEOUT: { status: 504, surface: http, message: 'model download timed out', description: 'connect, headers, a pause in the body, or the whole download past MODEL_DOWNLOAD_TIMEOUT_MS' },
  MODEL_DOWNLOAD_ABORTED: { status: 499, surface: http, message: 'model download was cancelled', description: "the caller cancelled the download (nginx's 499: client closed request)" },
  MODEL_STORAGE_FAILED: { status: 500, otherStatuses: [507], surface: http, message: 'cannot write the model archive', description: 'the model cache cannot be written (507 when the disk is full)' },
  MODEL_LOAD_FAILED: { status: 500, surface: http, message: 'model load failed', description: 'loading the model failed for a reason that has no code of its own' },

  // the archive
  ARCHIVE_NOT_ZIP: { status: 422, surface: http, message: 'the archive is not a zip', description: 'the download is not a zip archive (a gzip bomb ends here too)' },
  ARCHIVE_CORRUPT: { status: 422, surface: http, message: 'an archive entry cannot be unpacked', description: 'a damaged entry' },
  ARCHIVE_UNSAFE_ENTRY: { status: 422, surface: http, message: 'the archive holds an unsafe entry', description: 'zip-slip, links, duplicate or ambiguous names' },
  ARCHIVE_TOO_MANY_ENTRIES: { status: 422, surface: http, message: 'the archive has too many entries', description: 'more entries than ARCHIVE_MAX_ENTRIES' },
  ARCHIVE_TOO_LARGE: { status: 422, surface: http, message: 'the archive unpacks too large', description: 'zip bombs: over ARCHIVE_MAX_MB unpacked' },
  ARCHIVE_STORAGE_FAILED: { status: 500, otherStatuses: [507], surface: http, message: 'cannot write the unpacked archive', description: 'the model cache cannot be written (507 when the disk is full)' },
  ARCHIVE_READ_FAILED: { status: 500, surface: http, message: 'cannot read the archive', description: 'the downloaded archive cannot be read back' },

  // pipeline.json and the models in it
  PIPELINE_JSON_MISSING: { status: 422, surface: http, message: 'the archive has no pipeline.json', description: 'pipeline.json missing' },
  PIPELINE_JSON_INVALID: { status: 422, surface: http, message: 'pipeline.json is not valid JSON', description: 'pipeline.json not JSON or too large' },
  PIPELINE_INVALID: { status: 422, surface: http, message: 'pipeline.json is invalid', description: 'pipeline.json not valid (with problems: [{path, message}])' },
  SQL_IDENTIFIER_INVALID: { status: 422, surface: http, message: 'an SQL identifier in pipeline.json is invalid', description: 'a table or column name in a postgresql action that is not a plain identifier' },
  MODEL_FILE_MISSING: { status: 422, surface: http, message: 'a model file is not in the archive', description: 'pipeline.json names a model file the archive lacks' },
  MODEL_FORMAT_UNSUPPORTED: { status: 422, surface: http, message: 'only ONNX model files are supported', description: 'a model that is not ONNX (a .pt tells how to export it)' },
  MODEL_CORRUPT: { status: 422, surface: http, message: 'model file is not a valid ONNX model', description: 'a model file onnxruntime cannot load' },
  MODEL_INPUT_UNSUPPORTED: { status: 422, surface: http, message: 'model input is not supported', description: 'a model input other than float32 [N,3,H,W]' },
  MODEL_OUTPUT_UNSUPPORTED: { status: 422, surface: http, message: 'model output is not supported', description: 'a model output no decoder understands' },
  MODEL_METADATA_INVALID: { status: 422, surface: http, message: 'model metadata is invalid', description: 'class names or imgsz in the ONNX metadata cannot be read' },
  LABELS_INVALID: { status: 422, surface: http, message: 'labels file is invalid', description: 'a labels file that is empty, too long or has blank lines' },
  PREPROCESS_MISMATCH: { status: 500, surface: http, message: 'image preprocessing failed', description: 'an internal size mismatch while preparing a tensor' },

  // the mpta tool
  MPTA_TARGET_MISSING: { status: 400, surface: cli, message: 'the archive or folder cannot be read', description: 'mpta validate: the target cannot be read' },
  PACK_FOLDER_UNREADABLE: { status: 400, surface: cli, message: 'the folder cannot be read', description: 'mpta pack: the folder cannot be read' },
  PACK_NOT_A_FOLDER: { status: 400, surface: cli, message: 'not a folder', description: 'mpta pack: the target is not a folder' },
  PACK_SYMLINK: { status: 422, surface: cli, message: 'the folder holds a symbolic link', description: 'mpta pack: an archive holds plain files only' },
  PACK_SPECIAL_FILE: { status: 422, surface: cli, message: 'the folder holds a special file', description: 'mpta pack: not a plain file' },
} as const satisfies ErrorCatalogue;

export type InferErrorCode = keyof typeof INFER_ERRORS;

export const coded = CodedError.factory(INFER_ERRORS);

/** A pipeline.json problem found while loading, at its JSON path (PIPELINE_INVALID with `problems`). */
export function pipelineProblem(path: string, message: string) {
  return coded('PIPELINE_INVALID', `${path}: ${message}`, { problems: [{ path, message }] });
}

/**
 * Errors with a stable machine-readable `code` (undici/fastify style). HTTP layers map
 * `statusCode` straight to the response; logs carry `code` so operators can grep them.
 */
export class CodedError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, statusCode = 500, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodedError';
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ?? {}) };
  }
}

export function isCodedError(err: unknown): err is CodedError {
  return err instanceof CodedError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Errors with a stable machine-readable `code` (undici/fastify style). HTTP layers map
 * `statusCode` straight to the response; logs carry `code` so operators can grep them.
 *
 * Every code lives in a catalogue (code -> status, default message, description), the way
 * fastify keeps lib/errors.js: a CodedError is made only through a catalogue's factory, so a
 * code that is not catalogued does not compile and a status cannot drift between call sites.
 */

/** Where a code reaches people: the README documents each surface in its own place. */
export type ErrorSurface = 'http' | 'start' | 'cli' | 'test';

export interface ErrorSpec {
  /** The status it carries: the HTTP status of the answer (the CLI reports it too). */
  readonly status: number;
  /** Other statuses the code may carry where a call site says so (507 when the disk is full). */
  readonly otherStatuses?: readonly number[];
  /** Message used when a call site gives none. */
  readonly message: string;
  /** When it happens, in a line. */
  readonly description: string;
  /** `http`: an infer/relay answer (README "### Errors"); `start`: stops a service at start; `cli`: the mpta tool; `test`: test support. */
  readonly surface: ErrorSurface;
}

export type ErrorCatalogue = Readonly<Record<string, ErrorSpec>>;

export interface CodedErrorOptions {
  cause?: unknown;
  /** One of the spec's otherStatuses; anything else falls back on the spec's status. */
  status?: number;
}

/** A catalogue's factory: `coded('MODEL_NOT_FOUND', message, details)`. */
export interface ErrorFactory<Code extends string> {
  (code: Code, message?: string, details?: Record<string, unknown>, options?: CodedErrorOptions): CodedError<Code>;
  readonly catalogue: Readonly<Record<Code, ErrorSpec>>;
  /** Whether a code (from a log, an answer, another catalogue) is one of this catalogue's. */
  has(code: string): code is Code;
}

export class CodedError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;

  protected constructor(code: Code, message: string, statusCode: number, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodedError';
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }

  /** Makes the factory of a catalogue; the catalogue object is kept as is (`as const` it). */
  static factory<const C extends ErrorCatalogue>(catalogue: C): ErrorFactory<Extract<keyof C, string>> {
    type Code = Extract<keyof C, string>;
    const has = (code: string): code is Code => Object.hasOwn(catalogue, code);
    const make = (code: Code, message?: string, details?: Record<string, unknown>, options: CodedErrorOptions = {}): CodedError<Code> => {
      const spec = catalogue[code] as ErrorSpec;
      const status = options.status !== undefined && spec.otherStatuses?.includes(options.status) ? options.status : spec.status;
      return new CodedError(code, message ?? spec.message, status, details, 'cause' in options ? { cause: options.cause } : undefined);
    };
    return Object.assign(make, { catalogue: catalogue as Readonly<Record<Code, ErrorSpec>>, has });
  }

  /** The same error (code, status, details) with a message that says more, e.g. where it happened. */
  withMessage(message: string): CodedError<Code> {
    return new CodedError(this.code, message, this.statusCode, this.details);
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

/**
 * The codes both services raise. Each service's catalogue spreads these into its own
 * (services/<name>/src/error-codes.ts), so one factory covers all of a service's codes.
 */
import { CodedError, type ErrorCatalogue } from './errors.js';

export const SHARED_ERRORS = {
  CONFIG_INVALID: {
    status: 500,
    message: 'the configuration is invalid',
    description: 'an environment variable (or a RELAY_CONFIG key) has an invalid value; the service does not start, and the message names the variable',
    surface: 'start',
  },
} as const satisfies ErrorCatalogue;

export type SharedErrorCode = keyof typeof SHARED_ERRORS;

export const sharedError = CodedError.factory(SHARED_ERRORS);

/** Concurrent blob transfers when --jobs is not given. */
export const DEFAULT_JOBS = 6;

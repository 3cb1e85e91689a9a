// One error type for every problem with a model file: it names the file, the tensor (when one
// is involved) and the problem, so a bad checkpoint never surfaces as a crash or a bare
// RangeError from deep inside a parser.
import { basename } from "node:path";

export class ModelFileError extends Error {
  override readonly name = "ModelFileError";
  constructor(
    /** Path of the offending file (or folder). */
    readonly file: string,
    /** What is wrong, in words. */
    readonly problem: string,
    /** The tensor involved, if any (the name as written in the file). */
    readonly tensor?: string,
  ) {
    super(`${basename(file) || file}${tensor !== undefined ? `: tensor "${tensor}"` : ""}: ${problem} (${file})`);
  }
}

/** Runs `fn`; anything it throws that is not already a ModelFileError becomes one for `file`. */
export function wrapFileErrors<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ModelFileError(file, `cannot be read: ${msg}`);
  }
}

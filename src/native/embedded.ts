// Files embedded into the single binary (`bun run compile`, src/ship/compile.ts).
//
// In a source checkout this module is empty and everything is read from disk (build/,
// node_modules/). src/ship/compile.ts replaces this module's text at build time with
// `import x from "<abs path>" with { type: "file" }` lines for the native libraries that were
// built and for the Swagger UI assets, so inside the binary each value is an internal
// `/$bunfs/...` path readable with node:fs / Bun.file.

export interface EmbeddedFiles {
  /** libheadroom_<backend>.so by backend ("cpu", "cuda"). */
  libs: Record<string, string>;
  /** swagger-ui-dist files by file name ("swagger-ui-bundle.js", "swagger-ui.css"). */
  swagger: Record<string, string>;
}

export const embedded: EmbeddedFiles = { libs: {}, swagger: {} };

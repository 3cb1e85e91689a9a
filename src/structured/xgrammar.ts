// xgrammar (the WASM build, @mlc-ai/web-xgrammar) behind a small API: the tokenizer info built
// from our tokenizer, grammar compilation with a cache per (spec, tokenizer), and readable
// compile errors. Used by the frontend (validation: a bad schema is a 400 before the engine sees
// the request) and by the engine (its own matchers; see src/engine/structured.ts).
import type { CompiledGrammar, GrammarCompiler } from "@mlc-ai/web-xgrammar";

import type { Tokenizer } from "../model/tokenizer.ts";
import { choiceGrammar, specKey, type StructuredSpec } from "./spec.ts";

type Xgrammar = typeof import("@mlc-ai/web-xgrammar");
let loading: Promise<Xgrammar> | null = null;
/** The xgrammar module, imported on first use (its 1 MB of JS + WASM costs ~0.2 s to load). */
export function xgrammar(): Promise<Xgrammar> {
  loading ??= import("@mlc-ai/web-xgrammar");
  return loading;
}

/** A grammar the client sent that xgrammar cannot compile (the server answers 400). */
export class GrammarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrammarError";
  }
}

// xgrammar reports a compile error by printing "[FATAL] file:line: message" through the
// module's printErr (console.error, bound when the WASM module initializes) and then aborting
// with a generic "Aborted()". To give the client the real message, console.error is routed
// through a hook installed before the module starts; it captures while a compile runs.
let capture: string[] | null = null;
let hooked = false;
function hookConsole(): void {
  if (hooked) return;
  hooked = true;
  const orig = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    const line = args.map(String).join(" ");
    // Only xgrammar's own lines are taken; anything else logged meanwhile still goes out.
    if (capture && (line.startsWith("[FATAL]") || line.startsWith("Aborted("))) capture.push(line);
    else orig(...args);
  };
}
hookConsole();

/** Runs one xgrammar call, turning its abort into a GrammarError with xgrammar's message. */
async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const mine: string[] = [];
  const prev = capture;
  capture = mine;
  try {
    return await fn();
  } catch (e) {
    const fatal = mine.find((l) => l.startsWith("[FATAL]")) ?? (e instanceof Error ? e.message : String(e));
    // "[FATAL] /path/file.cc:123: Check failed: ...: message" -> the message
    const msg = fatal.replace(/^\[FATAL\]\s*\S+:\d+:\s*/, "").replace(/^Check failed: \(.*?\) is false: /, "");
    throw new GrammarError(`${what}: ${msg}`);
  } finally {
    capture = prev;
  }
}

export interface GrammarVocab {
  encoded: string[];
  vocabType: "byte_level" | "byte_fallback" | "raw";
  prependSpace: boolean;
  /** Logits width (config.json vocab_size, may exceed the tokenizer's). */
  vocabSize: number;
  stopTokenIds: number[];
}

export function grammarVocab(tok: Tokenizer, vocabSize: number): GrammarVocab {
  return {
    encoded: tok.encodedVocab(),
    vocabType: tok.vocabType,
    prependSpace: tok.prependSpace,
    vocabSize: Math.max(vocabSize, tok.vocabSize),
    stopTokenIds: tok.eosTokenIds,
  };
}

/** JSON output: any whitespace, but bounded, so a weak model cannot loop on spaces forever. */
const MAX_WHITESPACE = 2;

/**
 * The EBNF of a JSON schema, with one fix: xgrammar 0.1.27 writes strings with maxLength /
 * minLength as `"\"" [^"\\\r\n]{m,n} "\""`, which admits raw control characters (invalid
 * JSON: a random-weights model produces them). They are excluded as in its own basic string rule.
 * And its generic object/array rules (json_object, untyped values) allow unbounded whitespace
 * `[ \n\t]*` whatever maxWhitespaceCnt says: a small model then pads with newlines until
 * max_tokens (seen with stories260K); they get the same bound.
 */
async function jsonSchemaEbnf(schema: string, strict: boolean): Promise<string> {
  const ebnf = await (await xgrammar()).Testings._jsonSchemaToEBNF(schema, true, -1, undefined, strict, MAX_WHITESPACE);
  return ebnf.replaceAll('[^"\\\\\\r\\n]', '[^\\0-\\x1f"\\\\]').replaceAll("[ \\n\\t]*", `[ \\n\\t]{0,${MAX_WHITESPACE}}`);
}

/** Compiles specs for one tokenizer; compiled grammars are cached (LRU) by spec. */
export class GrammarCompilerCache {
  private compiler: GrammarCompiler | null = null;
  private starting: Promise<GrammarCompiler> | null = null;
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();

  constructor(
    readonly vocab: GrammarVocab,
    private readonly capacity = 256,
  ) {}

  /** Bitmask words per row: ceil(vocabSize / 32). */
  get words(): number {
    return Math.ceil(this.vocab.vocabSize / 32);
  }

  private async getCompiler(): Promise<GrammarCompiler> {
    if (this.compiler) return this.compiler;
    this.starting ??= (async () => {
      const v = this.vocab;
      const { GrammarCompiler, TokenizerInfo } = await xgrammar();
      const info = await TokenizerInfo.createTokenizerInfo(v.encoded, v.vocabType, v.prependSpace, v.vocabSize, v.stopTokenIds);
      this.compiler = await GrammarCompiler.createGrammarCompiler(info);
      return this.compiler;
    })();
    return this.starting;
  }

  /** The compiled grammar of `spec` (cached); rejects with GrammarError when it is invalid. */
  compile(spec: StructuredSpec): Promise<CompiledGrammar> {
    const key = specKey(spec);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key); // LRU: move to the end
      this.cache.set(key, hit);
      return hit;
    }
    const p = this.compileUncached(spec);
    this.cache.set(key, p);
    p.catch(() => this.cache.delete(key)); // errors are not cached
    while (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value as string;
      void this.cache.get(oldest)?.then(
        (g) => g.dispose(),
        () => {},
      );
      this.cache.delete(oldest);
    }
    return p;
  }

  get size(): number {
    return this.cache.size;
  }

  private async compileUncached(spec: StructuredSpec): Promise<CompiledGrammar> {
    const c = await this.getCompiler();
    switch (spec.type) {
      case "json_object":
        return guarded("json_object", async () => c.compileGrammar(await jsonSchemaEbnf(JSON.stringify({ type: "object" }), false)));
      case "json_schema":
        return guarded("invalid JSON schema", async () => c.compileGrammar(await jsonSchemaEbnf(JSON.stringify(spec.schema), true)));
      case "regex":
        return guarded("invalid regex", () =>
          c.compileStructuralTag({ type: "structural_tag", format: { type: "regex", pattern: spec.pattern } }),
        );
      case "choice":
        return guarded("invalid choice", () => c.compileGrammar(choiceGrammar(spec.choices)));
      case "grammar":
        return guarded("invalid grammar", () => c.compileGrammar(spec.grammar));
      case "structural_tag":
        return guarded("invalid structural tag", () => c.compileStructuralTag(spec.tag));
    }
  }
}

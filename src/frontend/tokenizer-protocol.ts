// Messages between the tokenizer pool (tokenizer-pool.ts) and its workers (tokenizer-worker.ts).
import type { ChatMessage, ChatTemplateRequest } from "../engine/api.ts";

export type ToTokenizer =
  | { type: "load"; model: string | null; chatTemplate: string | null }
  | { type: "encode"; id: number; text: string; addSpecialTokens: boolean }
  | { type: "chat"; id: number; messages: ChatMessage[]; opts: ChatTemplateRequest };

export type FromTokenizer =
  | { type: "loaded" }
  | { type: "load-failed"; message: string }
  /** Ids travel as a transferred Int32Array: no per-element copy for multi-MB prompts. */
  | { type: "done"; id: number; ids: Int32Array }
  | { type: "error"; id: number; message: string; name: string };

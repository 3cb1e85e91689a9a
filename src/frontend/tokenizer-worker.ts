// A tokenizer worker: loads the model's tokenizer and chat template once, then encodes text and
// renders + encodes chat messages on request. Tokenizing a multi-MB prompt takes seconds; here
// it blocks neither the HTTP event loop nor the engine.
import { loadTextModel, type TextModel } from "./text-model.ts";
import type { FromTokenizer, ToTokenizer } from "./tokenizer-protocol.ts";

declare const self: Worker;

let model: TextModel | null = null;
const post = (m: FromTokenizer, transfer: Transferable[] = []) => self.postMessage(m, transfer);

self.onmessage = (e: MessageEvent<ToTokenizer>) => {
  const m = e.data;
  if (m.type === "load") {
    try {
      model = loadTextModel(m.model, { chatTemplate: m.chatTemplate });
      post({ type: "loaded" });
    } catch (err) {
      post({ type: "load-failed", message: err instanceof Error ? err.message : String(err) });
    }
    return;
  }
  try {
    if (!model) throw new Error("tokenizer is not loaded");
    const ids =
      m.type === "encode"
        ? model.tokenizer.encode(m.text, { addBos: m.addSpecialTokens ? undefined : false })
        : model.chatTemplate.encode(model.tokenizer, m.messages, m.opts);
    const out = Int32Array.from(ids);
    post({ type: "done", id: m.id, ids: out }, [out.buffer]);
  } catch (err) {
    const e2 = err instanceof Error ? err : new Error(String(err));
    post({ type: "error", id: m.id, message: e2.message, name: e2.name });
  }
};

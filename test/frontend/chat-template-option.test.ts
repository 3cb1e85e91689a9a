// --chat-template reaches the tokenizer workers (they render chat for the HTTP process), and the
// request's template options (generation prompt, kwargs) travel with each chat job.
import { expect, test } from "bun:test";

import { loadTextModel } from "../../src/frontend/text-model.ts";
import { TokenizerPool } from "../../src/frontend/tokenizer-pool.ts";
import { HAVE_MODELS, HF_DIR, warnIfNoModels } from "../model/helpers.ts";

warnIfNoModels("chat-template-option");

test.skipIf(!HAVE_MODELS)("tokenizer workers use --chat-template and the request's template options", async () => {
  const template = "{% for m in messages %}[{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ suffix }}";
  const pool = new TokenizerPool(HF_DIR, 1, template);
  try {
    await pool.ready;
    const tok = loadTextModel(HF_DIR).tokenizer;
    const msgs = [{ role: "user", content: "Once upon a time" }];
    expect(Array.from(await pool.chat(msgs))).toEqual(tok.encode("[Once upon a time]>"));
    expect(Array.from(await pool.chat(msgs, { addGenerationPrompt: false, kwargs: { suffix: " the end" } }))).toEqual(
      tok.encode("[Once upon a time] the end"),
    );
  } finally {
    pool.close();
  }
});

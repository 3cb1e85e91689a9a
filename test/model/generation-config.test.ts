// generation_config.json parsing: eos_token_id as an int or a list, the sampling defaults kept
// (vLLM's list), everything else ignored; bad files and values named with their file.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { loadGenerationConfig, parseGenerationConfig } from "../../src/model/generation-config.ts";

const dir = mkdtempSync(join(tmpdir(), "headroom-gencfg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("generation_config.json", () => {
  test("eos_token_id int or list; defaults mapped; other fields ignored", () => {
    expect(parseGenerationConfig({ eos_token_id: 7 }, "g.json", 100).eosTokenIds).toEqual([7]);
    const llama = parseGenerationConfig(
      {
        bos_token_id: 1,
        do_sample: true,
        eos_token_id: [8, 9, 9],
        temperature: 0.6,
        top_p: 0.9,
        top_k: 20,
        min_p: 0.05,
        repetition_penalty: 1.1,
        max_new_tokens: 256,
        transformers_version: "4.45",
      },
      "g.json",
      100,
    );
    expect(llama.eosTokenIds).toEqual([8, 9]);
    expect(llama.defaults).toEqual({ temperature: 0.6, topP: 0.9, topK: 20, minP: 0.05, repetitionPenalty: 1.1, maxTokens: 256 });
    expect(parseGenerationConfig({}, "g.json", 100)).toEqual({ file: "g.json", eosTokenIds: [], defaults: {} });
  });

  test("bad values name the file and the field", () => {
    expect(() => parseGenerationConfig([], "g.json", 100)).toThrow(/g\.json.*must be a JSON object/);
    expect(() => parseGenerationConfig({ eos_token_id: [1, 100] }, "g.json", 100)).toThrow(
      /g\.json.*eos_token_id 100 is not a token id of this model \(vocabulary size 100\)/,
    );
    expect(() => parseGenerationConfig({ eos_token_id: "2" }, "g.json", 100)).toThrow(/eos_token_id "2"/);
    expect(() => parseGenerationConfig({ top_p: 0 }, "g.json", 100)).toThrow(/g\.json.*top_p 0 is out of range/);
    expect(() => parseGenerationConfig({ max_new_tokens: 1.5 }, "g.json", 100)).toThrow(/max_new_tokens 1\.5/);
  });

  test("--generation-config auto | none | DIR", () => {
    const model = join(dir, "model");
    const other = join(dir, "other");
    mkdirSync(model);
    mkdirSync(other);
    expect(loadGenerationConfig("auto", model, 100).file).toBeNull(); // no file: nothing
    writeFileSync(join(model, "generation_config.json"), JSON.stringify({ eos_token_id: 3 }));
    writeFileSync(join(other, "generation_config.json"), JSON.stringify({ eos_token_id: 4, temperature: 0.2 }));
    expect(loadGenerationConfig("auto", model, 100).eosTokenIds).toEqual([3]);
    expect(loadGenerationConfig("none", model, 100).eosTokenIds).toEqual([]);
    expect(loadGenerationConfig(other, model, 100)).toEqual({
      file: join(other, "generation_config.json"),
      eosTokenIds: [4],
      defaults: { temperature: 0.2 },
    });
    expect(() => loadGenerationConfig(join(dir, "missing"), model, 100)).toThrow(/not 'auto', 'none' or a folder/);
    expect(() => loadGenerationConfig(dir, model, 100)).toThrow(/has no generation_config\.json/);
    writeFileSync(join(model, "generation_config.json"), "{oops");
    expect(() => loadGenerationConfig("auto", model, 100)).toThrow(/generation_config\.json.*not valid JSON/);
  });
});

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ChatTemplate, FALLBACK_CHAT_TEMPLATE, type ChatMessage } from "../../src/model/chat-template.ts";
import { chatTemplateFromConfig, chatTemplateFromGguf } from "../../src/model/chat-template-source.ts";
import { demoChatTemplate, demoTokenizer } from "../../src/model/demo-model.ts";
import { GgufValueType, readGguf, serializeGguf } from "../../src/model/gguf.ts";
import { ggufTokenizer } from "../../src/model/gguf-tokenizer.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { HAVE_MODELS, HF_DIR, warnIfNoModels } from "./helpers.ts";

warnIfNoModels("chat-template");

// Public chat templates, as they appear in the models' tokenizer_config.json (JSON-unescaped).
const LLAMA2 = String.raw`{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`;
const LLAMA3 = String.raw`{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`;
const MISTRAL = String.raw`{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}`;
const QWEN2 = String.raw`{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;

const conv: ChatMessage[] = [
  { role: "user", content: "Hi there" },
  { role: "assistant", content: "Hello!" },
  { role: "user", content: "How are you?" },
];
const sys: ChatMessage = { role: "system", content: "You are terse." };

describe("chat templates (@huggingface/jinja)", () => {
  test("Llama-2", () => {
    const t = new ChatTemplate(LLAMA2, "<s>", "</s>", "test");
    expect(t.render([sys, ...conv])).toBe(
      "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello! </s><s>[INST] How are you? [/INST]",
    );
    expect(() => t.render([{ role: "assistant", content: "x" }])).toThrow(/alternate/);
  });
  test("Llama-3", () => {
    const t = new ChatTemplate(LLAMA3, "<|begin_of_text|>", "<|eot_id|>", "test");
    expect(t.render([sys, { role: "user", content: "Hi " }])).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: false })).toBe(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    );
  });
  test("Mistral", () => {
    const t = new ChatTemplate(MISTRAL, "<s>", "</s>", "test");
    expect(t.render(conv)).toBe("<s>[INST] Hi there [/INST]Hello!</s> [INST] How are you? [/INST]");
    expect(() => t.render([sys, ...conv])).toThrow(/alternate|Only user and assistant/);
  });
  test("Qwen2 (ChatML)", () => {
    const t = new ChatTemplate(QWEN2, null, "<|im_end|>", "test");
    expect(t.render([{ role: "user", content: "Hi" }])).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(t.render([sys, { role: "user", content: "Hi" }], { addGenerationPrompt: false })).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    );
  });
  test("fallback (ChatML) when the model has none", () => {
    const t = chatTemplateFromConfig({ bos_token: "<s>" });
    expect(t.isFallback).toBe(true);
    expect(t.source).toBe(FALLBACK_CHAT_TEMPLATE);
    expect(t.render([sys, { role: "user", content: "Hi" }])).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
  });
  test("tokenizer_config.json: string, named list, bos/eos as objects", () => {
    const a = chatTemplateFromConfig({ chat_template: LLAMA2, bos_token: { content: "<s>" }, eos_token: "</s>" });
    expect(a.isFallback).toBe(false);
    expect(a.render([{ role: "user", content: "x" }])).toBe("<s>[INST] x [/INST]");
    const b = chatTemplateFromConfig({
      chat_template: [
        { name: "tool_use", template: "T" },
        { name: "default", template: QWEN2 },
      ],
    });
    expect(b.source).toBe(QWEN2);
    expect(() => chatTemplateFromConfig({ chat_template: "{% for %}" })).toThrow(/does not parse/);
  });
  test("a template that adds BOS does not get a second one when encoding", () => {
    const tok = demoTokenizer();
    const t = new ChatTemplate(LLAMA2, "<s>", "</s>", "test");
    const ids = t.encode(tok, [{ role: "user", content: "hi" }]);
    expect(ids.filter((x) => x === tok.bosTokenId).length).toBe(1);
    expect(ids[0]).toBe(256);
    const d = demoChatTemplate().encode(tok, [{ role: "user", content: "hi" }]);
    expect(d[0]).toBe(256);
    expect(tok.decode(d)).toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  });
});

describe.skipIf(!HAVE_MODELS)("chat template from GGUF metadata", () => {
  test("tokenizer.chat_template is used, else the fallback", () => {
    const dir = mkdtempSync(join(tmpdir(), "headroom-chat-"));
    try {
      const hf = Tokenizer.fromFolder(HF_DIR);
      const tokens = Array.from({ length: hf.vocabSize }, (_, i) => hf.idToToken(i)!);
      const base = [
        { key: "general.architecture", type: GgufValueType.STRING, value: "llama" },
        { key: "tokenizer.ggml.model", type: GgufValueType.STRING, value: "llama" },
        { key: "tokenizer.ggml.tokens", type: GgufValueType.ARRAY, elemType: GgufValueType.STRING, value: tokens },
        { key: "tokenizer.ggml.bos_token_id", type: GgufValueType.U32, value: 1 },
        { key: "tokenizer.ggml.eos_token_id", type: GgufValueType.U32, value: 2 },
      ];
      const f1 = join(dir, "a.gguf");
      writeFileSync(f1, serializeGguf([...base, { key: "tokenizer.chat_template", type: GgufValueType.STRING, value: MISTRAL }], []));
      const g1 = readGguf(f1);
      const t1 = chatTemplateFromGguf(g1, ggufTokenizer(g1));
      expect(t1.isFallback).toBe(false);
      expect(t1.render([{ role: "user", content: "Hi" }])).toBe("<s>[INST] Hi [/INST]");
      const f2 = join(dir, "b.gguf");
      writeFileSync(f2, serializeGguf(base, []));
      const g2 = readGguf(f2);
      expect(chatTemplateFromGguf(g2, ggufTokenizer(g2)).isFallback).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

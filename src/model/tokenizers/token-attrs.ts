// Token types stored in GGUF (tokenizer.ggml.token_type) and the attribute bits llama.cpp
// derives from them (llama_token_attr), plus its by-text detection of end-of-generation and
// fill-in-the-middle tokens that conversion scripts do not mark.

/** tokenizer.ggml.token_type values (llama_token_type). */
export const TokenType = { UNDEFINED: 0, NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** llama_token_attr bits. */
export const Attr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

export function attrOfType(t: number): number {
  switch (t) {
    case TokenType.UNKNOWN:
      return Attr.UNKNOWN;
    case TokenType.UNUSED:
      return Attr.UNUSED;
    case TokenType.NORMAL:
      return Attr.NORMAL;
    case TokenType.CONTROL:
      return Attr.CONTROL;
    case TokenType.USER_DEFINED:
      return Attr.USER_DEFINED;
    case TokenType.BYTE:
      return Attr.BYTE;
    default:
      return Attr.UNDEFINED;
  }
}

/** Texts llama.cpp takes as the end-of-turn token when tokenizer.ggml.eot_token_id is absent. */
export const EOT_TEXTS = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|end_of_text|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "<｜end▁of▁sentence｜>",
  "<end_of_utterance>",
];
export const EOM_TEXTS = ["<|eom_id|>"];
export const FIM_TEXTS = {
  pre: ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"],
  suf: ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"],
  mid: ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"],
  pad: ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
  rep: ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
  sep: ["<|file_sep|>"],
} as const;
/** Texts of tokens that end generation (llama.cpp special_eog_ids, detected by text). */
export const EOG_TEXTS = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>",
  "[e~[",
];
/** gpt-oss channel markers llama.cpp always renders (forced USER_DEFINED). */
export const ALWAYS_RENDERED = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

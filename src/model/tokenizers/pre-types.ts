// llama.cpp's BPE pre-tokenizers by their GGUF name (tokenizer.ggml.pre): the split regexes
// (applied one after another, each splitting the pieces of the previous; from llama-vocab.cpp,
// which adapts the tokenizer.json regexes) and the vocabulary flags that come with each.

export interface PreTokenizer {
  /** llama.cpp's pre-type this name maps to (names group into one type). */
  type: string;
  regexes: string[];
  /** A whole pre-token that is a vocabulary entry is taken as is, without merges. */
  ignoreMerges: boolean;
  /** Decode removes spaces before punctuation and contractions (llama.cpp clean_spaces). */
  cleanSpaces: boolean;
  /** add_bos default before tokenizer.ggml.add_bos_token is read. */
  addBos: boolean;
  /** Spaces become U+2581 before splitting (SentencePiece-style BPE, e.g. Gemma 4). */
  escapeWhitespaces: boolean;
  /** Pre-tokens are written in GPT-2's byte-level alphabet before the merges. */
  byteEncode: boolean;
  /** The default BOS id is dropped (ChatGLM). */
  noBos?: boolean;
}

const LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT4O =
  "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const TEKKEN =
  "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Some letters below are written as \u escapes: their canonical equivalents (e.g. Ω U+2126 vs
// U+03A9) look the same but are other codepoints, and editors tend to normalise them.
const DEEPSEEK_LLM = [
  "[\r\n]",
  "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
  "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
  "\\s+$",
  "[一-龥ࠀ-一가-퟿]+",
  "\\p{N}+",
];

type Flags = Omit<PreTokenizer, "type" | "regexes">;
const BASE: Flags = { ignoreMerges: false, cleanSpaces: true, addBos: false, escapeWhitespaces: false, byteEncode: true };

interface Def {
  names: string[];
  regexes: string[];
  flags?: Partial<Flags>;
}

const DEFS: Record<string, Def> = {
  default: {
    names: ["default"],
    regexes: ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"],
  },
  llama3: {
    names: ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
    regexes: [LLAMA3],
    flags: { ignoreMerges: true, addBos: true },
  },
  dbrx: { names: ["dbrx", "smaug-bpe"], regexes: [LLAMA3] },
  "deepseek-llm": { names: ["deepseek-llm"], regexes: DEEPSEEK_LLM, flags: { cleanSpaces: false } },
  "deepseek-coder": {
    names: ["deepseek-coder"],
    regexes: ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"],
    flags: { cleanSpaces: false },
  },
  "deepseek-v3": {
    names: ["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"],
    regexes: [
      "\\p{N}{1,3}",
      "[一-龥぀-ゟ゠-ヿ]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ],
    flags: { cleanSpaces: false },
  },
  falcon: {
    names: ["falcon"],
    regexes: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"],
  },
  starcoder: {
    names: ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"],
    regexes: ["\\p{N}", GPT2],
  },
  gpt2: {
    names: [
      "gpt-2",
      "phi-2",
      "jina-es",
      "jina-de",
      "gigachat",
      "jina-v2-es",
      "jina-v2-de",
      "a.x-4.0",
      "mellum",
      "modern-bert",
      "mpt",
      "olmo",
      "jais",
      "trillion",
      "granite-docling",
      "exaone4",
      "jina-v1-en",
      "jina-v2-code",
      "roberta-bpe",
    ],
    regexes: [GPT2],
  },
  qwen2: {
    names: ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "megrez", "solar-open"],
    regexes: [QWEN2],
    flags: { cleanSpaces: false },
  },
  qwen35: { names: ["qwen35"], regexes: [QWEN35], flags: { cleanSpaces: false } },
  poro: { names: ["poro-chat", "bloom", "gpt3-finnish"], regexes: [" ?[^(\\s|.,!?…。，、।۔،)]+"], flags: { cleanSpaces: false } },
  chatglm4: { names: ["glm4", "chatglm-bpe"], regexes: [LLAMA3], flags: { noBos: true } },
  viking: { names: ["viking"], regexes: [" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"], flags: { cleanSpaces: false } },
  tekken: { names: ["tekken"], regexes: [TEKKEN], flags: { cleanSpaces: false, ignoreMerges: true, addBos: true } },
  gpt4o: { names: ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], regexes: [GPT4O], flags: { cleanSpaces: false } },
  "seed-coder": {
    names: ["seed-coder"],
    regexes: [
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ],
    flags: { cleanSpaces: false },
  },
  bailingmoe: {
    names: ["bailingmoe", "bailingmoe2", "llada-moe"],
    regexes: [
      "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    ],
    flags: { cleanSpaces: false },
  },
  "grok-2": { names: ["grok-2"], regexes: [QWEN2], flags: { cleanSpaces: false } },
  gemma4: {
    names: ["gemma4", "granite-embed-multi-311m"],
    regexes: ["[^\\n]+|[\\n]+"],
    flags: { escapeWhitespaces: true, byteEncode: false },
  },
};

const BY_NAME = new Map<string, PreTokenizer>();
for (const [type, d] of Object.entries(DEFS)) {
  for (const n of d.names) BY_NAME.set(n, { type, regexes: d.regexes, ...BASE, ...d.flags });
}

/** The pre-tokenizer for a tokenizer.ggml.pre name; missing name → "default" (as llama.cpp, which warns). */
export function preTokenizerByName(name: string | undefined): PreTokenizer | undefined {
  return BY_NAME.get(name === undefined || name === "" ? "default" : name);
}

export function knownPreTokenizers(): string[] {
  return [...BY_NAME.keys()].sort();
}

/** The exact regex strings llama.cpp replaces with hand-written splitters (unicode.cpp). */
export const GPT2_REGEX = GPT2;
export const LLAMA3_REGEXES = [
  LLAMA3,
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

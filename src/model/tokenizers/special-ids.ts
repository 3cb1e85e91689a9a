// Special token ids of a GGUF vocabulary: the metadata keys that set them, and llama.cpp's
// detection by text of what conversion scripts leave unmarked — end of turn/message,
// fill-in-the-middle, and the end-of-generation list the engine stops on.
import { Attr, EOG_TEXTS, EOM_TEXTS, EOT_TEXTS, FIM_TEXTS } from "./token-attrs.ts";

/** What the detection reads and updates. */
export interface VocabTables {
  readonly tokens: readonly string[];
  readonly idOf: ReadonlyMap<string, number>;
  readonly attrs: Uint16Array;
}

export interface SpecialIds {
  bos: number | null;
  eos: number | null;
  eot: number | null;
  eom: number | null;
  unk: number | null;
  sep: number | null;
  pad: number | null;
  mask: number | null;
  fimPre: number | null;
  fimSuf: number | null;
  fimMid: number | null;
  fimPad: number | null;
  fimRep: number | null;
  fimSep: number | null;
}

export const SPECIAL_KEYS: [keyof SpecialIds, string][] = [
  ["bos", "bos_token_id"],
  ["eos", "eos_token_id"],
  ["eot", "eot_token_id"],
  ["eom", "eom_token_id"],
  ["unk", "unknown_token_id"],
  ["sep", "seperator_token_id"],
  ["pad", "padding_token_id"],
  ["mask", "mask_token_id"],
  ["fimPre", "fim_pre_token_id"],
  ["fimSuf", "fim_suf_token_id"],
  ["fimMid", "fim_mid_token_id"],
  ["fimPad", "fim_pad_token_id"],
  ["fimRep", "fim_rep_token_id"],
  ["fimSep", "fim_sep_token_id"],
  // deprecated names
  ["fimPre", "prefix_token_id"],
  ["fimSuf", "suffix_token_id"],
  ["fimMid", "middle_token_id"],
];

/** Fills EOT/EOM/FIM ids the metadata leaves unset from token texts, marking those tokens CONTROL. */
export function detectSpecialsByText(v: VocabTables, special: SpecialIds): void {
  const markControl = (id: number) => {
    v.attrs[id]! |= Attr.CONTROL;
  };
  // llama.cpp takes the first match in hash-map order; here: the lowest id among the texts.
  const detect = (k: keyof SpecialIds, texts: readonly string[]) => {
    if (special[k] !== null) return;
    let best: number | undefined;
    for (const t of texts) {
      const id = v.idOf.get(t);
      if (id !== undefined && (best === undefined || id < best)) best = id;
    }
    if (best !== undefined) {
      special[k] = best;
      markControl(best);
    }
  };
  detect("eot", EOT_TEXTS);
  detect("eom", EOM_TEXTS);
  detect("fimPre", FIM_TEXTS.pre);
  detect("fimSuf", FIM_TEXTS.suf);
  detect("fimMid", FIM_TEXTS.mid);
  detect("fimPad", FIM_TEXTS.pad);
  detect("fimRep", FIM_TEXTS.rep);
  detect("fimSep", FIM_TEXTS.sep);
}

/** The end-of-generation ids (llama.cpp special_eog_ids), ascending; adjusts attrs as llama.cpp does. */
export function deriveEogIds(v: VocabTables, special: SpecialIds): number[] {
  const eog = new Set<number>();
  for (const id of [special.fimPad, special.fimRep, special.fimSep]) if (id !== null) eog.add(id);
  for (const t of EOG_TEXTS) {
    const id = v.idOf.get(t);
    if (id !== undefined) {
      eog.add(id);
      v.attrs[id]! |= Attr.CONTROL;
    }
  }
  for (const id of [special.eos, special.eot, special.eom]) if (id !== null) eog.add(id);
  const has = (t: string) => [...eog].some((id) => v.tokens[id] === t);
  // gpt-oss / solar-open: "<|end|>" ends a message, not the generation.
  if ((has("<|return|>") && has("<|call|>") && has("<|end|>")) || (has("<|calls|>") && has("<|flush|>") && has("<|end|>"))) {
    const id = v.idOf.get("<|end|>")!;
    eog.delete(id);
    v.attrs[id] = Attr.USER_DEFINED;
  }
  // Gemma 4: "</s>" is ordinary text there.
  if (has("<|tool_response>") && has("</s>")) {
    const id = v.idOf.get("</s>")!;
    eog.delete(id);
    v.attrs[id] = Attr.NORMAL;
  }
  return [...eog].sort((a, b) => a - b);
}

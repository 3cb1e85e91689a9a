#!/usr/bin/env python3
"""Renders the real chat templates in ../shared/models/chat-templates/ over the conversations in
test/fixtures/chat-templates/cases.json with Python Jinja2 set up exactly as Hugging Face
transformers does (apply_chat_template / render_jinja_template), and writes the results to
test/fixtures/chat-templates/<template>.json. test/model/chat-template-oracle.test.ts renders
the same inputs with our renderer and compares byte for byte.

Needs Debian's python3-jinja2 (apt-get install -y python3-jinja2). Usage:
  python3 scripts/render-chat-templates.py [TEMPLATE_DIR]
"""
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "chat-templates")
DEFAULT_TEMPLATES = os.path.join(ROOT, "..", "shared", "models", "chat-templates")


class RaisedByTemplate(Exception):
    pass


def environment(now):
    # transformers.utils.chat_template_utils._compile_jinja_template, with strftime_now pinned.
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # HF overrides Jinja's tojson: no HTML escaping, json.dumps options exposed.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, case, tokens, tools):
    # transformers.utils.chat_template_utils.render_jinja_template (continue_final_message included).
    messages = case["messages"]
    add_generation_prompt = case.get("add_generation_prompt", True)
    continue_final = case.get("continue_final_message", False)
    kwargs = {k: v for k, v in tokens.items() if v is not None}
    kwargs.update(case.get("chat_template_kwargs", {}))
    text = env.from_string(source).render(
        messages=messages,
        tools=tools if case.get("tools") else None,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )
    if continue_final:
        final = messages[-1]["content"]
        if final.strip() not in text:
            raise ValueError("continue_final_message is set but the final message does not appear in the chat after applying the chat template!")
        loc = text.rindex(final.strip())
        if text[loc : loc + len(final.lstrip())] == final:
            text = text[: loc + len(final.lstrip())]
        else:
            text = text[: loc + len(final.strip())]
    return text


def main():
    template_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_TEMPLATES
    with open(os.path.join(FIXTURES, "cases.json"), encoding="utf-8") as f:
        spec = json.load(f)
    env = environment(datetime.fromisoformat(spec["now"]))
    # strftime_now's directives, checked against src/model/python-strftime.ts.
    now = datetime.fromisoformat(spec["now"])
    with open(os.path.join(FIXTURES, "strftime.json"), "w", encoding="utf-8") as f:
        json.dump({fmt: now.strftime(fmt) for fmt in spec["strftime_formats"]}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    # Small expressions that pin down how values print (True/None, Python reprs, Undefined).
    exprs = {}
    for src in spec["expressions"]:
        try:
            exprs[src] = {"text": env.from_string(src).render(messages=[{"role": "user", "content": "hi"}])}
        except Exception as e:
            exprs[src] = {"error": str(e), "kind": type(e).__name__}
    with open(os.path.join(FIXTURES, "expressions.json"), "w", encoding="utf-8") as f:
        json.dump(exprs, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for name, tokens in spec["templates"].items():
        with open(os.path.join(template_dir, name + ".jinja"), encoding="utf-8") as f:
            source = f.read()
        out = {"_jinja2": jinja2.__version__}
        for case in spec["cases"]:
            try:
                out[case["name"]] = {"text": render(env, source, case, tokens, spec["tools"])}
            except jinja2.exceptions.TemplateError as e:
                # raise_exception's TemplateError, or a template bug surfacing as one (UndefinedError ...)
                kind = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
                out[case["name"]] = {"error": str(e), "kind": kind}
            except Exception as e:  # TypeError etc. from Python operations inside the template
                out[case["name"]] = {"error": str(e), "kind": type(e).__name__}
        path = os.path.join(FIXTURES, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write("\n")
        errors = sum(1 for k, v in out.items() if isinstance(v, dict) and "error" in v)
        print(f"{name}: {len(spec['cases']) - errors} rendered, {errors} raised")


if __name__ == "__main__":
    main()

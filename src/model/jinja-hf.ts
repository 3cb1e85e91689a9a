// @huggingface/jinja, made to agree with Python Jinja2 where real chat templates need it. Each
// difference below was found by test/model/chat-template-oracle.test.ts (real templates vs
// Python's renders):
//   - `mapping[key]` with a key that is not a string (Undefined, none, a number) is Undefined in
//     Jinja2 (a failed dict lookup); the library throws. (Hermes tool_use: basic_type_map[x.type])
//   - `x is iterable` is true for dicts and for Undefined in Jinja2. (Hermes: `json_spec.type is iterable`)
//   - `{% for %}` over Undefined iterates nothing (and runs the else block) in Jinja2.
//   - string filters on Undefined see "" (Jinja2 filters call str(value)): `x.description|trim`
//     is "" when there is no description (Hermes tool_use); `|length` is 0, `|list` is [].
//   - values print as Python's str() does: True/False/None, lists and dicts as Python reprs
//     (`{'a': 1}`), in `{{ }}` output, `|string`, `|join` and `~`.
// The library's Interpreter keeps its node evaluators private, so this hooks `evaluate` (every
// node passes through it) and handles only those cases, delegating everything else.
import { Environment, Interpreter } from "@huggingface/jinja";

type Statement = Parameters<Interpreter["evaluate"]>[0];
type Value = ReturnType<Interpreter["evaluate"]>;

interface MemberNode {
  type: "MemberExpression";
  object: Statement;
  property: Statement & { type: string };
  computed: boolean;
}
interface TestNode {
  type: "TestExpression";
  operand: Statement;
  negate: boolean;
  test: { value: string };
}
interface FilterNode {
  type: "FilterExpression";
  operand: Statement;
  filter: { type: string; value?: string; callee?: { value?: string } };
}
interface ForNode {
  type: "For";
  iterable: Statement & { type: string };
  defaultBlock: Statement[];
}

/** A runtime value of the library (its value classes are not exported; Environment.set converts). */
function runtime(v: unknown): Value {
  return new Environment().set("v", v);
}

const ITERABLE = new Set(["ArrayValue", "StringValue", "ObjectValue", "UndefinedValue"]);
const CONTAINERS = new Set(["ObjectValue", "NamespaceValue"]);
/** What Jinja2's filters give for an Undefined operand (they work on str(Undefined) == ""). */
const ON_UNDEFINED: Record<string, unknown> = {
  trim: "",
  upper: "",
  lower: "",
  title: "",
  capitalize: "",
  string: "",
  length: 0,
  count: 0,
  list: [],
  join: "",
};

/** Python's repr() of a string: single quotes unless only they occur, escapes as Python writes them. */
function pyStringRepr(v: string): string {
  const q = v.includes("'") && !v.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of v) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === q) out += "\\" + q;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return q + out + q;
}

/** Python's repr() of a template value. */
export function pyRepr(v: Value): string {
  switch (v.type) {
    case "StringValue":
      return pyStringRepr(v.value as string);
    case "BooleanValue":
      return v.value ? "True" : "False";
    case "NullValue":
    case "UndefinedValue":
      return "None";
    case "ArrayValue":
      return "[" + (v.value as Value[]).map(pyRepr).join(", ") + "]";
    case "TupleValue":
      return "(" + (v.value as Value[]).map(pyRepr).join(", ") + ((v.value as Value[]).length === 1 ? ",)" : ")");
    case "ObjectValue":
    case "NamespaceValue":
      return "{" + [...(v.value as Map<string, Value>)].map(([k, x]) => `${pyStringRepr(k)}: ${pyRepr(x)}`).join(", ") + "}";
    default:
      return v.toString();
  }
}

/** Python's str() of a template value (what `{{ v }}` prints); Undefined prints nothing. */
export function pyStr(v: Value): string {
  if (v.type === "StringValue") return v.value as string;
  if (v.type === "UndefinedValue") return "";
  return pyRepr(v);
}

/** Nodes that are statements (their result is rendered text, or nothing); every other node is an expression to print. */
const STATEMENTS = new Set(["Program", "If", "For", "Break", "Continue", "Set", "Macro", "Comment", "FilterStatement", "CallStatement"]);

interface BinaryNode {
  type: "BinaryExpression";
  operator: { value: string };
  left: Statement;
  right: Statement;
}
interface CallFilter {
  type: "CallExpression";
  callee: { value?: string };
  args: (Statement & { type: string })[];
}

export class HfInterpreter extends Interpreter {
  override evaluate(statement: Statement | undefined, environment: Environment): Value {
    switch (statement?.type) {
      case "MemberExpression": {
        const node = statement as unknown as MemberNode;
        if (node.computed && node.property.type !== "StringLiteral" && node.property.type !== "SliceExpression") {
          const key = super.evaluate(node.property, environment);
          if (key.type !== "StringValue" && CONTAINERS.has(super.evaluate(node.object, environment).type)) return runtime(undefined);
        }
        break;
      }
      case "TestExpression": {
        const node = statement as unknown as TestNode;
        if (node.test.value === "iterable") {
          const r = ITERABLE.has(this.evaluate(node.operand, environment).type);
          return runtime(node.negate ? !r : r);
        }
        break;
      }
      case "FilterExpression": {
        const node = statement as unknown as FilterNode;
        const name = node.filter.type === "Identifier" ? node.filter.value : node.filter.callee?.value;
        if (name === undefined) break;
        const operand = () => this.evaluate(node.operand, environment);
        if (Object.hasOwn(ON_UNDEFINED, name) && operand().type === "UndefinedValue") return runtime(ON_UNDEFINED[name]);
        if (name === "string") return runtime(pyStr(operand()));
        if (name === "join") {
          // join(sep) over a list: str() of each item (attribute= and other forms: the library's).
          const args = node.filter.type === "CallExpression" ? (node.filter as unknown as CallFilter).args : [];
          if (args.length > 1 || args.some((a) => a.type === "KeywordArgumentExpression")) break;
          const list = operand();
          if (list.type !== "ArrayValue") break;
          const sep = args.length === 1 ? pyStr(this.evaluate(args[0], environment)) : "";
          return runtime((list.value as Value[]).map(pyStr).join(sep));
        }
        break;
      }
      case "BinaryExpression": {
        const node = statement as unknown as BinaryNode;
        if (node.operator.value === "~")
          return runtime(pyStr(this.evaluate(node.left, environment)) + pyStr(this.evaluate(node.right, environment)));
        break;
      }
      case "For": {
        const node = statement as unknown as ForNode;
        if (node.iterable.type !== "SelectExpression" && this.evaluate(node.iterable, environment).type === "UndefinedValue") {
          let out = "";
          const scope = new Environment(environment);
          for (const s of node.defaultBlock) out += String(this.evaluate(s, scope).value ?? "");
          return runtime(out);
        }
        break;
      }
    }
    return super.evaluate(statement, environment);
  }
}

// Output: the library's evaluateBlock prints values with JavaScript's String() (true, null as
// nothing, JSON for lists); Jinja2 prints str(value). evaluateBlock is private in the typings,
// so it is replaced on this subclass's prototype (the library class itself is untouched).
(
  HfInterpreter.prototype as unknown as { evaluateBlock: (this: HfInterpreter, statements: Statement[], env: Environment) => Value }
).evaluateBlock = function (statements, env) {
  let out = "";
  for (const st of statements) {
    const v = this.evaluate(st, env);
    if (st && STATEMENTS.has(st.type)) out += v.type === "NullValue" || v.type === "UndefinedValue" ? "" : v.toString();
    else out += pyStr(v);
  }
  return runtime(out);
};

// @huggingface/jinja, made to agree with Python Jinja2 where real chat templates need it. Each
// difference below was found by test/model/chat-template-oracle.test.ts (real templates vs
// Python's renders):
//   - `mapping[key]` with a key that is not a string (Undefined, none, a number) is Undefined in
//     Jinja2 (a failed dict lookup); the library throws. (Hermes tool_use: basic_type_map[x.type])
//   - `x is iterable` is true for dicts and for Undefined in Jinja2. (Hermes: `json_spec.type is iterable`)
//   - `{% for %}` over Undefined iterates nothing (and runs the else block) in Jinja2.
//   - string filters on Undefined see "" (Jinja2 filters call str(value)): `x.description|trim`
//     is "" when there is no description (Hermes tool_use); `|length` is 0, `|list` is [].
// The library's Interpreter keeps its node evaluators private, so this hooks `evaluate` (every
// node passes through it) and handles only those cases, delegating everything else.
import { Environment, Interpreter } from "@huggingface/jinja";

type Statement = Parameters<Interpreter["evaluate"]>[0];
type Value = ReturnType<Interpreter["evaluate"]>;

interface MemberNode { type: "MemberExpression"; object: Statement; property: Statement & { type: string }; computed: boolean }
interface TestNode { type: "TestExpression"; operand: Statement; negate: boolean; test: { value: string } }
interface FilterNode { type: "FilterExpression"; operand: Statement; filter: { type: string; value?: string; callee?: { value?: string } } }
interface ForNode { type: "For"; iterable: Statement & { type: string }; defaultBlock: Statement[] }

/** A runtime value of the library (its value classes are not exported; Environment.set converts). */
function runtime(v: unknown): Value {
  return new Environment().set("v", v);
}

const ITERABLE = new Set(["ArrayValue", "StringValue", "ObjectValue", "UndefinedValue"]);
const CONTAINERS = new Set(["ObjectValue", "NamespaceValue"]);
/** What Jinja2's filters give for an Undefined operand (they work on str(Undefined) == ""). */
const ON_UNDEFINED: Record<string, unknown> = { trim: "", upper: "", lower: "", title: "", capitalize: "", string: "", length: 0, count: 0, list: [], join: "" };

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
        if (name !== undefined && Object.hasOwn(ON_UNDEFINED, name) && this.evaluate(node.operand, environment).type === "UndefinedValue") return runtime(ON_UNDEFINED[name]);
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

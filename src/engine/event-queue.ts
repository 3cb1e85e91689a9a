// One request's events on the client side: an unbounded async queue that the engine messages
// fill and generate() drains; an Error item ends the request (engine failure, request error).
import type { TokenEvent } from "./api.ts";

type Item = TokenEvent | Error;

export class EventQueue {
  private items: Item[] = [];
  private waiter: (() => void) | null = null;
  push(x: Item): void {
    this.items.push(x);
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
  async next(): Promise<Item> {
    while (this.items.length === 0) await new Promise<void>((r) => (this.waiter = r));
    return this.items.shift()!;
  }
}

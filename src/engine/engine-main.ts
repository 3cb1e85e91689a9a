// Entry point of the engine process when running from source (process-transport.ts spawns
// `bun src/engine/engine-main.ts`); the single binary runs the same through `headroom __engine`.
import { engineProcessMain } from "./engine-process.ts";

await engineProcessMain();

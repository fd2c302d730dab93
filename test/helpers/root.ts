import { fileURLToPath } from 'node:url'

/** The checkout: where package.json, src/ and config/ are. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

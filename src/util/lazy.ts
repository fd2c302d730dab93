// Modules loaded on first use. Most starts read no YAML file and set no MTLS_PROXY_* variable,
// and these two cost start-up time: ajv compiles env-schema's schema, and yaml is large.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml')
export const envSchema = (): typeof import('env-schema').envSchema => (require('env-schema') as typeof import('env-schema')).envSchema

// The demo API server's state: namespaces and pods as the API server keeps them (uid, resourceVersion,
// timestamps), and the stream of their changes that watches follow.
import { randomUUID } from 'node:crypto'

export type Obj = Record<string, any>
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'
export interface WatchEvent { type: EventType; object: Obj; rv: number }

export class DemoError extends Error {
  constructor (readonly code: number, readonly reason: string, message: string) {
    super(message)
  }
}

// Watches that resume from a resourceVersion are served from this many recent changes.
const HISTORY = 1000

const clone = (o: Obj): Obj => structuredClone(o)

const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** RFC 7386 JSON merge patch (`kubectl patch --type merge`): objects merge, anything else replaces, null deletes. */
export function mergePatch (target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch
  const out: Obj = isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (UNSAFE_KEYS.has(key)) continue
    if (value === null) delete out[key]
    else out[key] = mergePatch(out[key], value)
  }
  return out
}

// Lists whose items kubectl merges by name in a pod (containers, ports, env, volumes, volumeMounts…).
const namedList = (items: unknown[]) => items.every((i) => isObject(i) && typeof i.name === 'string')

/**
 * A strategic merge patch (`kubectl apply`, `label`, `set image`), as far as pods need it: lists of
 * named items merge by name, `$setElementOrder/<list>` orders them, an item with `$patch: delete`
 * goes; other directives are not stored.
 */
export function strategicMerge (target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch
  const out: Obj = isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (UNSAFE_KEYS.has(key) || key.startsWith('$')) continue
    const current = out[key]
    if (value === null) delete out[key]
    else if (Array.isArray(value) && Array.isArray(current) && namedList(value) && namedList(current)) {
      out[key] = mergeByName(current as Obj[], value as Obj[], patch[`$setElementOrder/${key}`])
    } else out[key] = Array.isArray(value) ? value.map((i) => strategicMerge(undefined, i)) : strategicMerge(current, value)
  }
  return out
}

function mergeByName (current: Obj[], patch: Obj[], order: unknown): Obj[] {
  const byName = new Map(current.map((item) => [item.name as string, item]))
  for (const item of patch) {
    if (item.$patch === 'delete') byName.delete(item.name)
    else byName.set(item.name, strategicMerge(byName.get(item.name), item) as Obj)
  }
  const items = [...byName.values()]
  if (!Array.isArray(order)) return items
  const rank = new Map(order.map((o, i) => [isObject(o) ? o.name : undefined, i]))
  return items.sort((a, b) => (rank.get(a.name) ?? order.length) - (rank.get(b.name) ?? order.length))
}

export class Store {
  #rv = 1000
  readonly namespaces = new Map<string, Obj>()
  readonly #pods = new Map<string, Obj>()
  readonly #history: WatchEvent[] = []
  readonly #listeners = new Set<(event: WatchEvent) => void>()

  constructor () {
    for (const name of ['default', 'kube-system']) {
      this.namespaces.set(name, {
        kind: 'Namespace',
        apiVersion: 'v1',
        metadata: {
          name,
          uid: randomUUID(),
          resourceVersion: String(this.#rv),
          creationTimestamp: new Date(Date.now() - 86_400_000).toISOString(),
          labels: { 'kubernetes.io/metadata.name': name },
        },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      })
    }
  }

  get resourceVersion (): string {
    return String(this.#rv)
  }

  pods (namespace: string | undefined): Obj[] {
    return [...this.#pods.values()].filter((p) => namespace === undefined || p.metadata.namespace === namespace).map(clone)
  }

  get (namespace: string, name: string): Obj {
    const pod = this.#pods.get(`${namespace}/${name}`)
    if (!pod) throw new DemoError(404, 'NotFound', `pods "${name}" not found`)
    return clone(pod)
  }

  create (namespace: string, body: Obj, created = new Date()): Obj {
    if (!this.namespaces.has(namespace)) throw new DemoError(404, 'NotFound', `namespaces "${namespace}" not found`)
    if (body?.kind !== 'Pod' || body.apiVersion !== 'v1') {
      throw new DemoError(400, 'BadRequest', 'the demo API server creates pods ' +
      '(apiVersion: v1, kind: Pod)')
    }
    const meta = body.metadata ?? {}
    const name: string | undefined = meta.name ?? (meta.generateName ? `${meta.generateName}${randomUUID().slice(0, 5)}` : undefined)
    if (!name || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
      throw new DemoError(422, 'Invalid', `Pod "${name ?? ''}" is ` +
      'invalid: metadata.name: must be a lowercase RFC 1123 name')
    }
    if (this.#pods.has(`${namespace}/${name}`)) throw new DemoError(409, 'AlreadyExists', `pods "${name}" already exists`)
    const containers: Obj[] = Array.isArray(body.spec?.containers) ? body.spec.containers : []
    if (containers.length === 0 || containers.some((c) => !c?.name || !c?.image)) {
      throw new DemoError(422, 'Invalid', `Pod "${name}" is invalid: spec.containers: each container needs a name and an image`)
    }
    const pod: Obj = {
      ...body,
      metadata: { ...meta, name, namespace, uid: randomUUID(), creationTimestamp: created.toISOString() },
      // The demo's pods run at once and stay up.
      status: {
        phase: 'Running',
        podIP: `10.244.0.${this.#pods.size + 10}`,
        startTime: created.toISOString(),
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: created.toISOString() }],
        containerStatuses: containers.map((c) => ({
          name: c.name,
          image: c.image,
          imageID: `${c.image}@sha256:${'0'.repeat(64)}`,
          ready: true,
          restartCount: 0,
          started: true,
          state: { running: { startedAt: created.toISOString() } },
        })),
      },
    }
    delete pod.metadata.generateName
    return this.#commit('ADDED', pod)
  }

  patch (namespace: string, name: string, patch: unknown, strategic: boolean): Obj {
    const current = this.get(namespace, name)
    const next = (strategic ? strategicMerge(current, patch) : mergePatch(current, patch)) as Obj
    // What identifies the object is the server's to say.
    next.metadata = { ...next.metadata, name, namespace, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp }
    return this.#commit('MODIFIED', next)
  }

  replace (namespace: string, name: string, body: Obj): Obj {
    const current = this.get(namespace, name)
    if (body?.metadata?.resourceVersion && body.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new DemoError(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply ` +
        'your changes to the latest version and try again')
    }
    const { uid, creationTimestamp } = current.metadata
    const metadata = { ...body.metadata, name, namespace, uid, creationTimestamp }
    return this.#commit('MODIFIED', { ...body, metadata, status: current.status })
  }

  delete (namespace: string, name: string): Obj {
    const pod = this.get(namespace, name)
    this.#pods.delete(`${namespace}/${name}`)
    return this.#commit('DELETED', pod)
  }

  /** Changes after resourceVersion `from`, or undefined when they are older than the history kept (410 Gone). */
  since (from: number): WatchEvent[] | undefined {
    if (from >= this.#rv) return []
    const first = this.#history[0]
    if (!first || first.rv > from + 1) return undefined
    return this.#history.filter((e) => e.rv > from)
  }

  subscribe (listener: (event: WatchEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #commit (type: EventType, pod: Obj): Obj {
    this.#rv += 1
    pod.metadata.resourceVersion = String(this.#rv)
    if (type !== 'DELETED') this.#pods.set(`${pod.metadata.namespace}/${pod.metadata.name}`, pod)
    const event: WatchEvent = { type, object: clone(pod), rv: this.#rv }
    this.#history.push(event)
    if (this.#history.length > HISTORY) this.#history.shift()
    for (const listener of this.#listeners) listener(event)
    return clone(pod)
  }
}

// The demo API server's state: namespaces and pods as the API server keeps them (uid, resourceVersion,
// timestamps), and the stream of their changes that watches follow.
import { randomUUID } from 'node:crypto'

export type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'
export interface WatchEvent { type: EventType; object: Obj; rv: number }

export class DemoError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) {
    super(message)
  }
}

// Watches that resume from a resourceVersion are served from this many recent changes.
const HISTORY = 1000

const clone = (o: Obj): Obj => structuredClone(o)

/** RFC 7386 JSON merge patch (strategic merge patches from kubectl label/annotate/patch merge the same way for these fields). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch
  const out: Obj = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {}
  for (const [key, value] of Object.entries(patch as Obj)) {
    if (key === '__proto__' || key === 'constructor') continue
    if (value === null) delete out[key]
    else out[key] = mergePatch(out[key], value)
  }
  return out
}

export class Store {
  #rv = 1000
  readonly namespaces = new Map<string, Obj>()
  readonly #pods = new Map<string, Obj>()
  readonly #history: WatchEvent[] = []
  readonly #listeners = new Set<(event: WatchEvent) => void>()

  constructor() {
    for (const name of ['default', 'kube-system']) {
      this.namespaces.set(name, {
        kind: 'Namespace', apiVersion: 'v1',
        metadata: { name, uid: randomUUID(), resourceVersion: String(this.#rv), creationTimestamp: new Date(Date.now() - 86_400_000).toISOString(), labels: { 'kubernetes.io/metadata.name': name } },
        spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' },
      })
    }
  }

  get resourceVersion(): string {
    return String(this.#rv)
  }

  pods(namespace: string | undefined): Obj[] {
    return [...this.#pods.values()].filter((p) => namespace === undefined || p.metadata.namespace === namespace).map(clone)
  }

  get(namespace: string, name: string): Obj {
    const pod = this.#pods.get(`${namespace}/${name}`)
    if (!pod) throw new DemoError(404, 'NotFound', `pods "${name}" not found`)
    return clone(pod)
  }

  create(namespace: string, body: Obj, created = new Date()): Obj {
    if (!this.namespaces.has(namespace)) throw new DemoError(404, 'NotFound', `namespaces "${namespace}" not found`)
    if (body?.kind !== 'Pod' || body.apiVersion !== 'v1') throw new DemoError(400, 'BadRequest', 'the demo API server creates pods (apiVersion: v1, kind: Pod)')
    const meta = body.metadata ?? {}
    const name: string | undefined = meta.name ?? (meta.generateName ? `${meta.generateName}${randomUUID().slice(0, 5)}` : undefined)
    if (!name || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) throw new DemoError(422, 'Invalid', `Pod "${name ?? ''}" is invalid: metadata.name: must be a lowercase RFC 1123 name`)
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
        phase: 'Running', podIP: `10.244.0.${this.#pods.size + 10}`, startTime: created.toISOString(),
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: created.toISOString() }],
        containerStatuses: containers.map((c) => ({ name: c.name, image: c.image, imageID: `${c.image}@sha256:${'0'.repeat(64)}`, ready: true, restartCount: 0, started: true, state: { running: { startedAt: created.toISOString() } } })),
      },
    }
    delete pod.metadata.generateName
    return this.#commit('ADDED', pod)
  }

  patch(namespace: string, name: string, patch: unknown): Obj {
    const current = this.get(namespace, name)
    const next = mergePatch(current, patch) as Obj
    // What identifies the object is the server's to say.
    next.metadata = { ...next.metadata, name, namespace, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp }
    return this.#commit('MODIFIED', next)
  }

  replace(namespace: string, name: string, body: Obj): Obj {
    const current = this.get(namespace, name)
    if (body?.metadata?.resourceVersion && body.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new DemoError(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`)
    }
    return this.#commit('MODIFIED', { ...body, metadata: { ...body.metadata, name, namespace, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp }, status: current.status })
  }

  delete(namespace: string, name: string): Obj {
    const pod = this.get(namespace, name)
    this.#pods.delete(`${namespace}/${name}`)
    return this.#commit('DELETED', pod)
  }

  /** Changes after resourceVersion `from`, or undefined when they are older than the history kept (410 Gone). */
  since(from: number): WatchEvent[] | undefined {
    if (from >= this.#rv) return []
    const first = this.#history[0]
    if (!first || first.rv > from + 1) return undefined
    return this.#history.filter((e) => e.rv > from)
  }

  subscribe(listener: (event: WatchEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #commit(type: EventType, pod: Obj): Obj {
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

// Clients that vanish abruptly: a TCP reset (RST, as SO_LINGER 0 and close sends) at a chosen moment.
import { connect } from 'node:net'

export interface ResetPlan {
  /** what to send first */
  send: string | Buffer
  /** reset this many ms after sending (or after the first answer bytes, with afterAnswer) */
  delayMs: number
  /** wait for the first bytes of the answer, then send `then` and reset */
  afterAnswer?: boolean
  then?: Buffer
}

/** Sends, then resets the connection; resolves once the socket is gone, whatever happened. */
export function sendThenReset (port: number, plan: ResetPlan): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const reset = () => setTimeout(() => {
      if (plan.then) socket.write(plan.then)
      socket.resetAndDestroy()
    }, plan.delayMs)
    socket.on('error', () => socket.destroy())
    socket.on('close', () => resolve())
    socket.on('connect', () => {
      socket.write(plan.send)
      if (plan.afterAnswer) socket.once('data', reset)
      else reset()
    })
    // A plan whose answer never comes still ends.
    setTimeout(() => socket.destroy(), 5_000).unref()
  })
}

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

/**
 * Linux network namespaces for tests and benchmarks: one "switch" namespace holding a bridge,
 * and one namespace per node (host or client) joined to it by a veth pair. Every interface is
 * created inside our own namespaces (never in the caller's), there is no route out and no NAT,
 * so the private addresses used here (10.77.0.0/24) never meet any real network, and parallel
 * runs, each with its own switch, may reuse the same addresses. Names carry a per-run random
 * tag after PREFIX, so leftovers of a killed run can be found and removed (`cleanupLeftovers`).
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns add`).
 */
export const PREFIX = 'dsnet-'
export const SUBNET = '10.77.0'

export interface NetNode {
  /** The namespace's name: run processes in it with `ip netns exec NAME ...`. */
  ns: string
  /** Its one address on the test network (besides 127.0.0.1 on its own lo). */
  address: string
  /** The switch-side interface of its veth pair (inside the switch namespace). */
  port: string
  /** Egress cap of its uplink, Mbit/s; undefined when uncapped. */
  rateMbit?: number
}

export interface NetOptions {
  hosts: number
  clients?: number
  /** Egress cap of each host's uplink (tc tbf on the node side of the veth), Mbit/s. */
  hostRateMbit?: number
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function nsRun(ns: string, cmd: string, ...args: string[]): string {
  return ip('netns', 'exec', ns, cmd, ...args)
}

/** Why namespaces cannot be used here (the caller skips with this), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, as .ci/run does)'
  const probe = `${PREFIX}probe-${randomBytes(3).toString('hex')}`
  try {
    ip('netns', 'add', probe)
  } catch (err) {
    return `cannot create a network namespace (ip netns add failed: ${firstLine(err)})`
  }
  try {
    ip('netns', 'del', probe)
  } catch {
    // left for cleanupLeftovers
  }
  try {
    execFileSync('tc', ['-V'], { stdio: 'ignore' })
  } catch {
    return 'tc (iproute2) is not installed'
  }
  return undefined
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string }
  return String(e.stderr || e.message || err).trim().split('\n')[0]
}

const live = new Set<NetBed>()
let exitHooked = false

/** Tears every live bed down when the process ends, however it ends (a failed test, ^C, SIGTERM). */
function hookExit(): void {
  if (exitHooked) return
  exitHooked = true
  process.on('exit', () => {
    for (const bed of live) bed.destroy()
  })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const bed of live) bed.destroy()
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
    })
  }
}

export class NetBed {
  readonly tag: string
  readonly switchNs: string
  readonly hosts: NetNode[] = []
  readonly clients: NetNode[] = []
  private readonly namespaces: string[] = []
  private destroyed = false

  private constructor() {
    // The owner's pid in the name lets cleanupLeftovers tell a dead run's leftovers from a live run's.
    this.tag = `${process.pid}-${randomBytes(2).toString('hex')}`
    this.switchNs = `${PREFIX}${this.tag}-sw`
  }

  /**
   * Hosts get 10.77.0.1..N, clients 10.77.0.101..; each host's uplink is capped at
   * `hostRateMbit` in its sending direction (what a mirror's upload capacity is).
   * On any failure half-way, what was made is removed before the error is thrown.
   */
  static create(opts: NetOptions): NetBed {
    hookExit()
    const bed = new NetBed()
    live.add(bed)
    try {
      bed.addNamespace(bed.switchNs)
      ip('-n', bed.switchNs, 'link', 'add', 'br0', 'type', 'bridge')
      ip('-n', bed.switchNs, 'link', 'set', 'br0', 'up')
      for (let i = 1; i <= opts.hosts; i++) bed.hosts.push(bed.addNode(`h${i}`, `${SUBNET}.${i}`, opts.hostRateMbit))
      for (let i = 1; i <= (opts.clients ?? 1); i++) bed.clients.push(bed.addNode(`c${i}`, `${SUBNET}.${100 + i}`))
    } catch (err) {
      bed.destroy()
      throw new Error(`could not build the test network: ${firstLine(err)}`)
    }
    return bed
  }

  private addNamespace(name: string): void {
    ip('netns', 'add', name)
    this.namespaces.push(name)
    ip('-n', name, 'link', 'set', 'lo', 'up')
  }

  private addNode(short: string, address: string, rateMbit?: number): NetNode {
    const ns = `${PREFIX}${this.tag}-${short}`
    this.addNamespace(ns)
    // Created inside the switch namespace, the peer end moved straight into the node's:
    // no interface ever exists in the caller's namespace, so names cannot collide there.
    ip('-n', this.switchNs, 'link', 'add', short, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    ip('-n', this.switchNs, 'link', 'set', short, 'master', 'br0', 'up')
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
    if (rateMbit !== undefined) {
      nsRun(ns, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '256kb', 'latency', '50ms')
    }
    return { ns, address, port: short, rateMbit }
  }

  /** Cuts a node's uplink (both directions): its TCP connections stall, nothing is reset. */
  linkDown(node: NetNode): void {
    ip('-n', this.switchNs, 'link', 'set', node.port, 'down')
  }

  linkUp(node: NetNode): void {
    ip('-n', this.switchNs, 'link', 'set', node.port, 'up')
  }

  /** The argv that runs `cmd args` inside the node's namespace. */
  argv(node: NetNode, cmd: string, args: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', node.ns, cmd, ...args]]
  }

  /** Pids of every process in the bed's namespaces (all started by us: nobody else knows the names). */
  pids(): number[] {
    const out: number[] = []
    for (const ns of this.namespaces) {
      try {
        out.push(...ip('netns', 'pids', ns).split(/\s+/).filter(Boolean).map(Number))
      } catch {
        // namespace already gone
      }
    }
    return out
  }

  /**
   * Stops every process left in our namespaces (SIGTERM, then SIGKILL after 5 s) and deletes
   * the namespaces; deleting the switch removes the veth pairs with it. Synchronous, so it also
   * runs from a process 'exit' handler. Safe to call twice.
   */
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    live.delete(this)
    killAll(this.pids())
    for (const ns of this.namespaces.reverse()) {
      try {
        ip('netns', 'del', ns)
      } catch {
        // already gone
      }
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function killAll(pids: number[]): void {
  const alive = pidAlive
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000
  while (pids.some(alive) && Date.now() < deadline) sleepSync(50)
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Removes namespaces (and their processes) left by runs that died before their cleanup;
 * returns their names. A namespace whose owner (the pid in its name) still runs is kept,
 * unless `all`.
 */
export function cleanupLeftovers(all = false): string[] {
  let names: string[]
  try {
    names = ip('netns', 'list').split('\n').map(l => l.trim().split(/\s+/)[0]).filter(n => n?.startsWith(PREFIX))
  } catch {
    return []
  }
  names = names.filter(n => {
    const owner = Number(/^[a-z]+-(\d+)-/.exec(n)?.[1])
    return all || !Number.isInteger(owner) || owner === process.pid || !pidAlive(owner)
  })
  for (const ns of names) {
    try {
      killAll(ip('netns', 'pids', ns).split(/\s+/).filter(Boolean).map(Number))
      ip('netns', 'del', ns)
    } catch {
      // gone meanwhile
    }
  }
  return names
}

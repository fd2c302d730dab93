// A systemd unit's SystemCallFilter=, applied without systemd: the groups expanded by
// `systemd-analyze syscall-filter`, compiled into a seccomp BPF allow-list by a small C program
// that installs it and then runs a command. So a test can run the very process a unit would start
// under the very filter it would get.
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { arch } from 'node:os'
import { join } from 'node:path'

export interface UnitFilter {
  /** the system calls the unit allows */
  allowed: Set<string>
  /** SystemCallErrorNumber=, if set: what a refused call returns instead of killing the process */
  errorNumber: string | undefined
}

// The AUDIT_ARCH of each architecture the runner knows.
const AUDIT_ARCH: Record<string, string> = { x64: 'AUDIT_ARCH_X86_64', arm64: 'AUDIT_ARCH_AARCH64' }

/** Why a seccomp test cannot run here, or undefined when it can. */
export function seccompUnavailable (): string | undefined {
  if (process.platform !== 'linux') return 'seccomp is Linux only'
  if (!AUDIT_ARCH[arch()]) return `no seccomp runner for ${arch()}`
  for (const tool of ['systemd-analyze', 'gcc']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' })
    } catch {
      return `${tool} is not installed`
    }
  }
  return undefined
}

/** Every group `systemd-analyze syscall-filter` knows, with its entries (system calls and other groups). */
function syscallGroups (): Map<string, string[]> {
  const out = execFileSync('systemd-analyze', ['syscall-filter'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const groups = new Map<string, string[]>()
  let current: string[] | undefined
  for (const line of out.split('\n')) {
    if (line.startsWith('@')) groups.set(line.trim(), current = [])
    else if (current && /^\s+[@\w]/.test(line)) current.push(line.trim())
  }
  return groups
}

/**
 * The filter a unit's SystemCallFilter= lines make, as systemd builds it: the first line decides
 * allow-list or deny-list; an allow-list always includes @default; later `~` lines take away.
 */
export function unitFilter (unit: string): UnitFilter {
  const groups = syscallGroups()
  const expand = (item: string): string[] => (item.startsWith('@') ? (groups.get(item) ?? []).flatMap(expand) : [item])
  const lines = [...unit.matchAll(/^SystemCallFilter=(.*)$/gm)].map((m) => m[1]!.trim())
  if (lines.length === 0 || lines[0]!.startsWith('~')) throw new Error('expected an allow-list SystemCallFilter= first')
  const allowed = new Set(expand('@default'))
  for (const line of lines) {
    const deny = line.startsWith('~')
    for (const item of line.replace(/^~/, '').split(/\s+/).filter(Boolean)) {
      for (const call of expand(item)) {
        if (deny) allowed.delete(call)
        else allowed.add(call)
      }
    }
  }
  return { allowed, errorNumber: /^SystemCallErrorNumber=(\w+)$/m.exec(unit)?.[1] }
}

/**
 * Compiles the runner into dir: `RUNNER -- COMMAND…` installs the filter (refused calls kill the
 * process, or return `errorNumber`), then execs COMMAND.
 */
export async function buildRunner (dir: string, filter: UnitFilter, refuse: 'kill' | 'errno'): Promise<string> {
  const calls = [...filter.allowed].sort().map((c) => `#ifdef SYS_${c}\n  SYS_${c},\n#endif`).join('\n')
  const denied = refuse === 'kill' ? 'SECCOMP_RET_KILL_PROCESS' : `SECCOMP_RET_ERRNO | (${filter.errorNumber ?? 'EPERM'} & SECCOMP_RET_DATA)`
  const source = `
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const long allowed[] = {
${calls}
};

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t n = sizeof allowed / sizeof allowed[0], i = 0;
  struct sock_filter *f = calloc(2 * n + 8, sizeof *f);
  /* Another architecture, or x32 calls on x86-64 (SystemCallArchitectures=native): refused. */
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ${AUDIT_ARCH[arch()]}, 1, 0);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ${denied});
  for (size_t k = 0; k < n; k++) {
    f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, allowed[k], 0, 1);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ${denied});
  struct sock_fprog prog = { .len = (unsigned short)i, .filter = f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("no_new_privs"); return 3; }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) { perror("seccomp"); return 3; }
  execvp(argv[2], argv + 2);
  perror("execvp");
  return 127;
}
`
  const file = join(dir, `seccomp-${refuse}.c`)
  const runner = join(dir, `seccomp-${refuse}`)
  await writeFile(file, source)
  execFileSync('gcc', ['-O1', '-o', runner, file], { stdio: 'pipe' })
  return runner
}

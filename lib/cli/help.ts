// SPDX-License-Identifier: MIT
// Help text, the man page and shell completion, all generated from the commands' option
// tables (lib/cli/commands), so they cannot disagree with what the parser accepts.
import type { Command, OptionDef } from './command';
import { allOptions } from './command';

function spelling(name: string, def: OptionDef): string {
  const value = def.type === 'string' ? ` ${def.arg ?? 'VALUE'}` : '';
  return def.short ? `-${def.short}, --${name}${value}` : `    --${name}${value}`;
}

function describeOption(def: OptionDef): string {
  const parts = [def.help ?? ''];
  if (def.multiple) parts.push('(repeatable)');
  if (def.choices) parts.push(`(one of: ${def.choices.join(', ')})`);
  if (def.default !== undefined && def.default !== false && def.type === 'string') parts.push(`(default ${String(def.default)})`);
  return parts.filter(Boolean).join(' ');
}

/** `tcpscope help CMD` / `tcpscope CMD --help`. */
export function commandHelp(command: Command): string {
  const options = allOptions(command);
  const rows = Object.entries(options).map(([name, def]) => [spelling(name, def), describeOption(def)] as const);
  const width = Math.min(34, Math.max(...rows.map(([s]) => s.length)));
  const lines = [`usage: tcpscope ${command.name} ${command.usage}`, '', command.summary];
  if (command.description) lines.push('', command.description);
  if (command.positionalsHelp) lines.push('', `arguments: ${command.positionalsHelp}`);
  lines.push('', 'options:');
  for (const [s, d] of rows) lines.push(s.length > width ? `  ${s}\n  ${''.padEnd(width)}  ${d}` : `  ${s.padEnd(width)}  ${d}`);
  if (command.deprecated?.length) {
    lines.push('', 'old spellings (still accepted this version, with a warning):');
    for (const d of command.deprecated) lines.push(`  ${d.spelling.padEnd(width)}  same as --${d.option}`);
  }
  if (command.examples?.length) {
    lines.push('', 'examples:');
    for (const [cmd, what] of command.examples) lines.push(`  ${cmd}`, `      ${what}`);
  }
  return lines.join('\n');
}

function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');
}

/** The tcpscope(1) man page, in roff. */
export function manPage(commands: readonly Command[], version: string): string {
  const out = [
    `.TH TCPSCOPE 1 "" "tcpscope ${version}" "User Commands"`,
    '.SH NAME',
    'tcpscope \\- inspect incoming TCP traffic with eBPF',
    '.SH SYNOPSIS',
    '.B tcpscope',
    '.I COMMAND',
    '[\\fIoptions\\fR]',
    '.br',
    '.B tcpscope help',
    '.I COMMAND',
    '.SH DESCRIPTION',
    'tcpscope attaches eBPF programs (tracepoints, tc, XDP, cgroup) to watch incoming TCP. Streaming commands print a readiness line on standard error once attached ("listening on ..." or "tracing ..."), stop after \\fB\\-c\\fR N events, \\fB\\-\\-duration\\fR, or Ctrl\\-C, print a summary on standard error, and leave nothing attached.',
    '.SH COMMANDS',
  ];
  for (const c of commands) {
    out.push('.SS', `.B tcpscope ${c.name}`, roff(c.usage.split('\n')[0]!), '.PP', roff(c.summary));
    if (c.description) out.push('.PP', roff(c.description));
    for (const [name, def] of Object.entries(allOptions(c))) out.push('.TP', `.B ${roff(spelling(name, def).trim())}`, roff(describeOption(def)));
    for (const d of c.deprecated ?? []) out.push('.TP', `.B ${roff(d.spelling)}`, roff(`deprecated: ${d.warning}`));
    if (c.examples?.length) {
      out.push('.PP', 'Examples:');
      for (const [cmd, what] of c.examples) out.push('.TP', `.B ${roff(cmd)}`, roff(what));
    }
  }
  out.push('.SH EXIT STATUS', '0 success, 1 failure, 2 usage error.', '.SH SEE ALSO', 'tcpdump(1), pcap-filter(7), ss(8), bpftool(8)');
  return `${out.join('\n')}\n`;
}

/** bash completion: `source <(tcpscope completion bash)`. */
export function bashCompletion(commands: readonly Command[]): string {
  const cases = commands.map((c) => {
    const opts = Object.entries(allOptions(c)).flatMap(([n, d]) => [`--${n}`, ...(d.short ? [`-${d.short}`] : [])]);
    const valueCases = Object.entries(c.options).filter(([, d]) => d.choices).map(([n, d]) => `        --${n}${d.short ? `|-${d.short}` : ''}) COMPREPLY=($(compgen -W "${d.choices!.join(' ')}" -- "$cur")); return;;`);
    const ifaces = Object.entries(c.options).filter(([n]) => n === 'interface').map(([, d]) => `        --interface${d.short ? `|-${d.short}` : ''}) COMPREPLY=($(compgen -W "any $(ls /sys/class/net 2>/dev/null)" -- "$cur")); return;;`);
    const files = Object.entries(c.options).filter(([, d]) => d.arg === 'FILE' || d.arg === 'FILE.pcapng').map(([n, d]) => `        --${n}${d.short ? `|-${d.short}` : ''}) COMPREPLY=($(compgen -f -- "$cur")); return;;`);
    return `    ${c.name})\n      case "$prev" in\n${[...valueCases, ...ifaces, ...files].join('\n')}${valueCases.length + ifaces.length + files.length ? '\n' : ''}      esac\n      COMPREPLY=($(compgen -W "${opts.join(' ')}" -- "$cur"));;`;
  });
  return `# bash completion for tcpscope (generated by: tcpscope completion bash)
_tcpscope() {
  local cur prev cmd
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "help completion man ${commands.map((c) => c.name).join(' ')}" -- "$cur"))
    return
  fi
  case "$cmd" in
    help) COMPREPLY=($(compgen -W "${commands.map((c) => c.name).join(' ')}" -- "$cur"));;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur"));;
${cases.join('\n')}
  esac
}
complete -F _tcpscope tcpscope
`;
}

function zshQuote(text: string): string {
  return text.replace(/'/g, "'\\''").replace(/[[\]:]/g, (c) => `\\${c}`);
}

/** zsh completion: `source <(tcpscope completion zsh)` or save as _tcpscope in $fpath. */
export function zshCompletion(commands: readonly Command[]): string {
  const fns = commands.map((c) => {
    const specs = Object.entries(allOptions(c)).map(([n, d]) => {
      const desc = zshQuote(d.help ?? n);
      const action = d.type === 'boolean' ? '' : d.choices ? `:${d.arg ?? n}:(${d.choices.join(' ')})` : n === 'interface' ? `:${d.arg ?? n}:_net_interfaces` : d.arg?.startsWith('FILE') ? `:${d.arg}:_files` : `:${d.arg ?? n}:`;
      const names = d.short
        ? `${d.multiple ? "'*'" : `'(-${d.short} --${n})'`}{-${d.short},--${n}}'`
        : `'${d.multiple ? '*' : ''}--${n}`;
      return `    ${names}[${desc}]${action}'`;
    });
    return `_tcpscope_${c.name.replace(/-/g, '_')}() {\n  _arguments -s \\\n${specs.join(' \\\n')}${c.allowPositionals ? " \\\n    '*:expression:'" : ''}\n}`;
  });
  return `#compdef tcpscope
# zsh completion for tcpscope (generated by: tcpscope completion zsh)
${fns.join('\n')}
_tcpscope() {
  local -a cmds
  cmds=(
${commands.map((c) => `    '${c.name}:${zshQuote(c.summary)}'`).join('\n')}
    'help:describe a command'
    'completion:print shell completion (bash, zsh)'
    'man:print the man page (roff)'
  )
  if (( CURRENT == 2 )); then
    _describe command cmds
    return
  fi
  local cmd=\${words[2]}
  shift words; (( CURRENT-- ))
  case $cmd in
    help) _describe command cmds;;
    completion) _values shell bash zsh;;
${commands.map((c) => `    ${c.name}) _tcpscope_${c.name.replace(/-/g, '_')};;`).join('\n')}
  esac
}
compdef _tcpscope tcpscope
`;
}

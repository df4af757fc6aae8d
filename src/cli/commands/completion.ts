import { Argument, type Command } from "commander";
import { NO_FILES } from "../completion.js";

// Each script asks `regcli __complete WORD... CURRENT` (src/cli/completion.ts) on every TAB and only shows the answer.

const bash = `# bash completion for regcli (regcli completion bash)
_regcli() {
    local line=\${COMP_LINE:0:COMP_POINT} words cur out directive c p pre=""
    read -ra words <<< "$line"
    [[ \${#words[@]} -eq 0 || $line == *[[:space:]] ]] && words+=("")
    cur=\${words[-1]}
    out=$("\${words[0]}" __complete "\${words[@]:1}" 2>/dev/null) || return
    local -a lines=()
    mapfile -t lines <<< "$out"
    directive=\${lines[-1]#:}
    unset 'lines[-1]'
    # bash replaces only the text after the last word break (: and = by default) before the cursor.
    for c in : =; do
        [[ $COMP_WORDBREAKS == *"$c"* && $cur == *"$c"* ]] || continue
        p=\${cur%"\${cur##*"$c"}"}
        (( \${#p} > \${#pre} )) && pre=$p
    done
    COMPREPLY=()
    for c in "\${lines[@]}"; do
        c=\${c%%$'\\t'*}
        COMPREPLY+=("\${c#"$pre"}")
    done
    (( \${#COMPREPLY[@]} == 0 && (directive & ${NO_FILES}) )) && compopt +o default 2>/dev/null
    return 0
}
complete -o default -F _regcli regcli
`;

const zsh = `#compdef regcli
compdef _regcli regcli
# zsh completion for regcli (regcli completion zsh)
_regcli() {
    local out directive line
    local -a lines candidates
    out=$(\${words[1]} __complete "\${(@Q)words[2,CURRENT]}" 2>/dev/null) || return 1
    lines=("\${(@f)out}")
    directive=\${lines[-1]#:}
    for line in "\${(@)lines[1,-2]}"; do
        if [[ $line == *$'\\t'* ]]; then
            candidates+=("\${\${line%%$'\\t'*}//:/\\\\:}:\${line#*$'\\t'}")
        else
            candidates+=("\${line//:/\\\\:}")
        fi
    done
    if (( \${#candidates} == 0 )); then
        (( directive & ${NO_FILES} )) || _files
        return
    fi
    _describe -t regcli regcli candidates
}
if [[ "\${funcstack[1]}" == _regcli ]]; then _regcli "$@"; fi
`;

const fish = `# fish completion for regcli (regcli completion fish)
function __regcli_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] __complete $tokens[2..-1] $cur 2>/dev/null)
    or return
    set -l directive (string replace -r '^:' '' -- $out[-1])
    set -e out[-1]
    if test (count $out) -eq 0; and test (math "bitand($directive, ${NO_FILES})") -eq 0
        __fish_complete_path $cur
        return
    end
    printf '%s\\n' $out
end
complete -c regcli -f -a '(__regcli_complete)'
`;

const SCRIPTS: Record<string, string> = { bash, zsh, fish };

export function register(program: Command): void {
  program
    .command("completion")
    .description("print the shell completion script for bash, zsh or fish (commands, flags, flag values, local image names)")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(Object.keys(SCRIPTS)))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  source <(regcli completion bash)                             # this bash session\n" +
        "  regcli completion bash > ~/.local/share/bash-completion/completions/regcli\n" +
        "  regcli completion zsh > \"${fpath[1]}/_regcli\"                # then start a new zsh (compinit)\n" +
        "  regcli completion fish > ~/.config/fish/completions/regcli.fish",
    )
    .action((shell: string) => {
      process.stdout.write(SCRIPTS[shell]!);
    });
}

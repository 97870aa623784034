#!/usr/bin/env bash
# Usage: scripts/new-vault.sh ENV      (or: make vault ENV=prod)
#
# Creates inventory/ENV/group_vars/st44_db/vault.yml, encrypted with ansible-vault, holding
# every vault_* variable the files of inventory/ENV refer to. Asks for the vault password
# (twice) and for each value, none of them echoed. Refuses to overwrite an existing vault:
# change one with `.venv/bin/ansible-vault edit` or `rekey`.
#
# The secrets stay in this shell's memory: they reach ansible-vault through pipes (printf is
# a builtin, so they are in no process's arguments), never through a file, not even a
# temporary one.
set -euo pipefail

die() { printf 'new-vault: %s\n' "$*" >&2; exit 1; }

cd "$(dirname "$0")/.."

[ $# -eq 1 ] || die "usage: scripts/new-vault.sh ENV (an inventory under inventory/, e.g. prod)"
env_name=$1
[[ $env_name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "ENV must be the name of a directory under inventory/, got '$env_name'"
inventory=inventory/$env_name
[ -d "$inventory" ] || die "no inventory $inventory: copy inventory/prod to $inventory first"
vault=$inventory/group_vars/st44_db/vault.yml
[ ! -e "$vault" ] || die "$vault exists; it is never overwritten. Change it with .venv/bin/ansible-vault edit $vault (or rekey), or remove it first to make a new one"
ansible_vault=.venv/bin/ansible-vault
[ -x "$ansible_vault" ] || die "$ansible_vault is missing: run make setup first"

# The vault_* variables the inventory uses (comments aside), each once.
mapfile -t names < <(find "$inventory" -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.json' \) \
    ! -path "$vault" -exec grep -hv '^[[:space:]]*#' {} + | grep -oE '\bvault_[A-Za-z0-9_]+' | sort -u || true)
[ ${#names[@]} -gt 0 ] || die "$inventory refers to no vault_* variable: nothing to put in a vault"

# Prompts go to stderr and answers come from stdin, a terminal or a pipe (a password
# manager, a test). On a terminal echo goes off before the prompt shows: read -s alone
# turns it off only once it runs, so an answer typed as soon as the prompt appears could
# still be echoed. The trap turns it back on however the script ends.
if [ -t 0 ]; then
    trap 'stty echo 2>/dev/null' EXIT
fi
ask() {  # ask PROMPT VAR: read one line without echo into VAR
    local prompt=$1
    if [ -t 0 ]; then stty -echo; fi
    printf '%s' "$prompt" >&2
    IFS= read -rs "$2" || die "no answer to: $prompt"
    if [ -t 0 ]; then stty echo; fi
    printf '\n' >&2
}

printf 'Creating %s with %s.\n' "$vault" "${names[*]}" >&2
password='' repeated=''  # ask reads into the variable it is named
ask "New vault password for $env_name: " password
[ -n "$password" ] || die "the vault password must not be empty"
ask "Repeat the vault password: " repeated
[ "$password" = "$repeated" ] || die "the two vault passwords differ; nothing was written"
unset repeated

content="---
# Made by scripts/new-vault.sh. Change a value with: .venv/bin/ansible-vault edit $vault
# !unsafe: Ansible never templates these values, so a password may hold {{ or {%.
"
for name in "${names[@]}"; do
    ask "$name: " value
    [ -n "$value" ] || die "$name must not be empty; nothing was written"
    [[ $value != *[[:cntrl:]]* ]] || die "$name holds a control character; nothing was written"
    # A YAML double-quoted string: only \ and " need escaping once control characters are out.
    value=${value//\\/\\\\}
    value=${value//\"/\\\"}
    content+="$name: !unsafe \"$value\"
"
done
unset value

mkdir -p "$(dirname "$vault")"
partial=$(mktemp "$vault.partial.XXXXXX")
trap 'rm -f "$partial"' EXIT
printf '%s' "$content" | "$ansible_vault" encrypt --vault-password-file <(printf '%s\n' "$password") \
    --output - - >"$partial" || die "ansible-vault could not encrypt the vault; nothing was written"
unset content password
# ln refuses an existing name: a vault made meanwhile by someone else is not overwritten either.
ln "$partial" "$vault" 2>/dev/null || die "$vault appeared meanwhile; it is never overwritten"
printf 'Wrote %s (encrypted). Check it: %s view %s\n' "$vault" "$ansible_vault" "$vault" >&2

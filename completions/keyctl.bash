# keyctl completion for bash: `source <(keyctl completions bash)`.
# Needs no bash-completion and leaves COMP_WORDBREAKS as it is.

# Quote removal without expansion (never eval): a\ b, 'a b' and "a b" all give `a b`.
_keyctl_dequote() {
    local in=$1 c q=''
    REPLY=
    while [[ -n $in ]]; do
        c=${in:0:1}
        in=${in:1}
        if [[ $q == "'" ]]; then
            if [[ $c == "'" ]]; then q=; else REPLY+=$c; fi
        elif [[ $c == \\ && ( -z $q || $in == [\"\\\$\`]* ) ]]; then
            REPLY+=${in:0:1}
            in=${in:1}
        elif [[ $c == '"' ]]; then
            if [[ -n $q ]]; then q=; else q='"'; fi
        elif [[ $c == "'" && -z $q ]]; then
            q="'"
        else
            REPLY+=$c
        fi
    done
}

_clap_complete_keyctl() {
    local rest=$COMP_LINE piece blank i j=-1 cword=0 head='' typed quoted=''
    local -a words=()
    # Bash splits `team:ci` into team, :, ci (and a URL at its ':' and '@'). Glue
    # pieces that meet at ':', '=' or '@' with no blank between them back into one
    # word; drop what follows the cursor in the word being completed.
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        piece=${COMP_WORDS[i]}
        blank=
        [[ $rest == [[:blank:]]* ]] && blank=1
        rest=${rest#"${rest%%[![:blank:]]*}"}
        rest=${rest#"$piece"}
        if ((j >= 1)) && [[ -z $blank ]] && [[ $piece == [:=@]* || ${words[j]} == *[:=@] ]]; then
            ((i > COMP_CWORD && j == cword)) && continue
        else
            ((j++))
            words[j]=
        fi
        if ((i == COMP_CWORD)); then
            cword=$j
            # Right after `team:` the cursor's piece is the `:` itself: bash completes
            # the empty text after it, so the colon is glued text too.
            if [[ -n $piece && -z ${piece//[:=@]/} ]]; then
                words[j]+=$piece
                piece=''
            fi
            head=${words[j]}
            typed=$piece
            # Bash 4+ passes the word up to the cursor as $2, an opening quote removed.
            if ((BASH_VERSINFO[0] >= 4)); then
                typed=$2
                [[ $piece == [\"\']* ]] && quoted=1
            fi
            piece=$typed
        fi
        words[j]+=$piece
    done
    for i in "${!words[@]}"; do
        if ((i != cword)); then
            _keyctl_dequote "${words[i]}"
            words[i]=$REPLY
        fi
    done
    # The glued text before the cursor's piece: keyctl's candidates start with it, but
    # bash replaces only the piece, so it is cut from the replies.
    _keyctl_dequote "$head"
    head=$REPLY
    if [[ -n $quoted ]]; then
        words[cword]=$head$typed
    else
        _keyctl_dequote "$typed"
        words[cword]=$head$REPLY
    fi

    local space=true out status candidate
    compopt +o nospace 2>/dev/null && space=false
    out=$(
        _CLAP_IFS=$'\v' \
        _CLAP_COMPLETE_INDEX=$cword \
        _CLAP_COMPLETE_COMP_TYPE=${COMP_TYPE-} \
        _CLAP_COMPLETE_SPACE=$space \
        KEYCTL_COMPLETE=bash \
        keyctl -- "${words[@]}"
    )
    status=$?
    COMPREPLY=()
    if ((status != 0)); then
        unset COMPREPLY
        return
    fi
    # One candidate per \v-separated field, taken as is: read -a neither splits at
    # blanks nor globs (unlike COMPREPLY=( $(...) ), which made `*` the folder's files).
    IFS=$'\v' read -r -d '' -a COMPREPLY < <(printf '%s' "$out") || :
    for i in "${!COMPREPLY[@]}"; do
        candidate=${COMPREPLY[i]#"$head"}
        # Quoted for the command line; a listing (Tab Tab) shows the names as they are.
        if [[ -z $quoted && -n $candidate && ${COMP_TYPE-} != 63 ]]; then
            printf -v candidate %q "$candidate"
        fi
        COMPREPLY[i]=$candidate
    done
    if [[ $space == false && ${COMPREPLY[0]-} =~ [=/:]$ ]]; then
        compopt -o nospace
    fi
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -o nospace -o bashdefault -o nosort -F _clap_complete_keyctl keyctl
else
    complete -o nospace -o bashdefault -F _clap_complete_keyctl keyctl
fi

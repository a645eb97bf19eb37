# Bash completion for simq(1).
#
# Source it from ~/.bashrc, or install it as
# /usr/share/bash-completion/completions/simq.  Queue names and job ids
# are asked of the broker (with the -s or $SIMQ_SERVER in effect), quietly
# and only when completing an argument that takes them.

_simq_ask()
{
	# Runs simq with the -s/--token-file given so far on the line.
	"${_simq_cmd[@]}" "$@" 2>/dev/null
}

_simq_queues()
{
	_simq_ask queues | awk 'NR > 1 { print $1 }'
}

# Ids of jobs in the given states (first column of simq list).
_simq_ids()
{
	local st
	for st in "$@"; do
		_simq_ask list --state "$st" | awk 'NR > 1 { print $1 }'
	done
}

_simq()
{
	local cur prev i cmd= word
	local cmds="submit status wait output result fetch cancel retry list"
	cmds+=" workers queues pause resume stats help"
	local common="-s --server --token-file --json -h --help"

	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_simq_cmd=("${COMP_WORDS[0]}")
	for ((i = 1; i < COMP_CWORD; i++)); do
		word=${COMP_WORDS[i]}
		case $word in
		-s | --server | --token-file)
			_simq_cmd+=("$word" "${COMP_WORDS[i + 1]}")
			((i++))
			;;
		--server=* | --token-file=*)
			_simq_cmd+=("$word")
			;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$word
			elif [[ $cmd == submit ]]; then
				# A word that is no option's value starts the
				# job's command: complete files from there.
				case ${COMP_WORDS[i - 1]} in
				-q | --queue | -p | --priority | -t | --timeout | \
				    -r | --retries | --after | --after-any | \
				    --after-failed | --array | --delay | \
				    --name | -e | --env | -C | --chdir | -o | \
				    --output | -b | --batch | -f | --file | \
				    --collect | --each-line) ;;
				*)
					COMPREPLY=($(compgen -f -- "$cur"))
					return
					;;
				esac
			fi
			;;
		esac
	done

	case $prev in
	-s | --server | -p | --priority | -r | --retries | --after | \
	    --after-any | --after-failed | \
	    --array | --name | -e | --env | -o | --output | -n | --limit | \
	    --collect)
		return
		;;
	-t | --timeout | --delay | -i | --interval)
		COMPREPLY=($(compgen -W "30s 10m 1h 2h 1d" -- "$cur"))
		return
		;;
	--token-file | -b | --batch | -f | --file | --each-line)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-C | --chdir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	-q | --queue)
		if [[ $cmd == submit || $cmd == list || $cmd == cancel ]]; then
			COMPREPLY=($(compgen -W "$(_simq_queues)" -- "$cur"))
			return
		fi
		;;
	--state)
		COMPREPLY=($(compgen -W "waiting queued running done failed
		    canceled" -- "$cur"))
		return
		;;
	esac

	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$cmds $common" -- "$cur"))
		return
	fi
	local opts=
	case $cmd in
	submit)
		opts="-q --queue -p --priority -t --timeout -r --retries
		    --after --after-any --after-failed --array --delay
		    --name -e --env -C --chdir --cpus --gpus --mem
		    -o --output --export --no-check -w --wait -b --batch
		    -f --file --collect --each-line --"
		if [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -c -- "$cur"))
			return
		fi
		;;
	status) opts="-l --long --watch -i --interval" ;;
	wait) opts="-q --quiet -t --timeout" ;;
	output) opts="--stderr" ;;
	list) opts="-q --queue --state --name --since -n --limit -r --reverse" ;;
	cancel) opts="-q --queue --state" ;;
	result) opts="--with-id" ;;
	fetch) opts="-o --output" ;;
	help)
		COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
		return
	fi
	case $cmd in
	pause | resume)
		COMPREPLY=($(compgen -W "$(_simq_queues)" -- "$cur"))
		;;
	cancel | wait)
		COMPREPLY=($(compgen -W "$(_simq_ids waiting queued running)" \
		    -- "$cur"))
		;;
	retry)
		COMPREPLY=($(compgen -W "$(_simq_ids failed canceled)" -- "$cur"))
		;;
	status | output | result | fetch)
		COMPREPLY=($(compgen -W "$(_simq_ids running done failed)" \
		    -- "$cur"))
		;;
	esac
}

complete -F _simq simq

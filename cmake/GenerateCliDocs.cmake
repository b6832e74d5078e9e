# The man page and the bash and zsh completions of program-executor, generated
# at build time from the CLI's own `--help` texts (CLI11), so they always
# describe the binary they ship with: every subcommand, its options, their
# descriptions and their choices.
#
#   cmake -DDAEMON=<program-executor> -DVERSION=<x.y.z> -DOUTPUT_DIR=<dir> -P GenerateCliDocs.cmake
#
# writes <dir>/program-executor.1, <dir>/program-executor.bash-completion and
# <dir>/_program-executor (zsh).
cmake_minimum_required(VERSION 3.25)  # script mode: today's policies (empty list elements kept)
foreach(required DAEMON VERSION OUTPUT_DIR)
  if(NOT ${required})
    message(FATAL_ERROR "GenerateCliDocs.cmake: -D${required}=... is required")
  endif()
endforeach()

# `program-executor [subcommand] --help`, with the executable's path as the
# user types it.
function(pe_help out)
  execute_process(COMMAND ${DAEMON} ${ARGN} --help OUTPUT_VARIABLE text ERROR_VARIABLE error
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${DAEMON} ${ARGN} --help failed (${rc}): ${error}")
  endif()
  string(REPLACE "${DAEMON}" "program-executor" text "${text}")
  # CMake lists split at ";": kept as a placeholder until written out.
  string(REPLACE ";" "<semicolon>" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# roff: backslashes and leading dots or quotes must not be read as requests.
function(pe_roff out text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

pe_help(main_help)
# The subcommands: "  name   description" lines after "Subcommands:".
string(REGEX MATCH "Subcommands:\n(.*)" subcommand_block "${main_help}")
string(REGEX MATCHALL "\n  [a-z][a-z-]*  +[^\n]*" subcommand_lines "\n${CMAKE_MATCH_1}")
set(commands "")
foreach(line ${subcommand_lines})
  string(REGEX REPLACE "^\n  ([a-z][a-z-]*) +([^\n]*)$" "\\1" name "${line}")
  string(REGEX REPLACE "^\n  ([a-z][a-z-]*) +([^\n]*)$" "\\2" summary "${line}")
  list(APPEND commands ${name})
  set(summary_${name} "${summary}")
endforeach()
list(LENGTH commands command_count)
if(command_count LESS 3)
  message(FATAL_ERROR "found ${command_count} subcommands in `program-executor --help`: "
                      "GenerateCliDocs.cmake no longer understands its layout")
endif()

# Per subcommand: its help, and its options as "flags|argument|choices|description".
foreach(name ${commands})
  pe_help(help_${name} ${name})
  string(REGEX MATCH "\nOptions:\n(.*)" options_block "${help_${name}}")
  set(block "${CMAKE_MATCH_1}")
  # An option line may have its description on the next, indented line.
  string(REGEX REPLACE "\n                    +" " " block "${block}")
  string(REGEX MATCHALL "(^|\n)  -[^\n]*" option_lines "${block}")
  set(options_${name} "")
  foreach(line ${option_lines})
    string(REGEX REPLACE "^\n" "" line "${line}")
    string(REGEX MATCH "^  ((-[a-zA-Z],)?--[a-z][a-z0-9-]*)( ([A-Z]+)[^ ]*( \\.\\.\\.)?( REQUIRED)?)? *(.*)$"
           matched "${line}")
    if(NOT matched)
      continue()
    endif()
    set(flags "${CMAKE_MATCH_1}")
    set(argument "${CMAKE_MATCH_4}")
    set(description "${CMAKE_MATCH_7}")
    set(choices "")
    if(line MATCHES ":\\{([a-z0-9_,-]+)\\}")
      string(REPLACE "," " " choices "${CMAKE_MATCH_1}")
    endif()
    list(APPEND options_${name} "${flags}|${argument}|${choices}|${description}")
  endforeach()
endforeach()

# ---- man page ------------------------------------------------------------------
string(REGEX MATCH "^[^\n]*\n[^\n]*" description "${main_help}")
string(REPLACE "\n" " " description "${description}")
string(REGEX REPLACE "^program-executor: " "" description "${description}")
pe_roff(description "${description}")
set(man ".\\\" Generated from `program-executor --help` by cmake/GenerateCliDocs.cmake; do not edit.
.TH PROGRAM-EXECUTOR 1 \"\" \"program-executor ${VERSION}\" \"User Commands\"
.SH NAME
program-executor \\- run programs (ordered lists of plugin jobs) from RabbitMQ with SQL bookkeeping
.SH SYNOPSIS
.B program-executor
.I COMMAND
.RI [ OPTIONS ]
.br
.B program-executor
.BR \\-\\-help \" | \" \\-\\-version
.SH DESCRIPTION
${description}
.PP
.B program-executor run
is the daemon, started by systemd (program-executor.service); the other
commands are the operator's tools. Every command reads the configuration file
given with
.B \\-c
(default
.IR /etc/program-executor/config.yaml ).
.SH COMMANDS
")
foreach(name ${commands})
  pe_roff(summary "${summary_${name}}")
  pe_roff(help "${help_${name}}")
  # The first line repeats the summary and the last one the footer.
  # (REGEX REPLACE would apply "^" at every match: cut by position instead.)
  string(FIND "${help}" "\n" first_end)
  math(EXPR first_end "${first_end} + 1")
  string(SUBSTRING "${help}" ${first_end} -1 help)
  string(FIND "${help}" "\nConfiguration reference:" footer)
  if(footer GREATER -1)
    string(SUBSTRING "${help}" 0 ${footer} help)
  endif()
  string(STRIP "${help}" help)
  string(APPEND man ".SS ${name}\n${summary}\n.PP\n.nf\n${help}\n.fi\n")
endforeach()
string(APPEND man ".SH FILES
.TP
.I /etc/program-executor/config.yaml
the configuration (a conffile)
.TP
.I /etc/program-executor/environment
secrets for the service, such as PE_AMQP_PASSWORD (not shipped)
.TP
.I /var/lib/program-executor/
the daemon's state (the SQLite database)
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1).
The documentation in
.IR /usr/share/doc/program-executor/ :
README.md, operations.md, configuration.md, plugin-guide.md.
")
string(REPLACE "<semicolon>" ";" man "${man}")
file(WRITE ${OUTPUT_DIR}/program-executor.1 "${man}")

# ---- bash completion -------------------------------------------------------------
string(REPLACE ";" " " command_words "${commands}")
set(bash "# bash completion for program-executor; generated from its --help texts by
# cmake/GenerateCliDocs.cmake.
_program_executor() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  if (( COMP_CWORD == 1 )); then
    COMPREPLY=( \$(compgen -W '${command_words} --help --version' -- \"\$cur\") )
    return
  fi
  local options='' choices=''
  case \${COMP_WORDS[1]} in
")
foreach(name ${commands})
  set(words "")
  set(value_cases "")
  foreach(option ${options_${name}})
    string(REPLACE "|" ";" parts "${option}")
    list(GET parts 0 flags)
    list(GET parts 1 argument)
    list(GET parts 2 choices)
    string(REPLACE "," " " flag_words "${flags}")
    string(APPEND words " ${flag_words}")
    string(REPLACE "," "|" pattern "${flags}")
    if(NOT argument STREQUAL "")
      if(flags MATCHES "--config|file")
        string(APPEND value_cases "        ${pattern}) COMPREPLY=( \$(compgen -f -- \"\$cur\") ); return ;;\n")
      elseif(NOT choices STREQUAL "")
        string(APPEND value_cases "        ${pattern}) COMPREPLY=( \$(compgen -W '${choices}' -- \"\$cur\") ); return ;;\n")
      else()
        string(APPEND value_cases "        ${pattern}) return ;;\n")
      endif()
    endif()
  endforeach()
  string(STRIP "${words}" words)
  string(APPEND bash "    ${name})\n      case \$prev in\n${value_cases}      esac\n      options='${words}' ;;\n")
endforeach()
string(APPEND bash "  esac
  COMPREPLY=( \$(compgen -W \"\$options\" -- \"\$cur\") )
}
complete -o default -F _program_executor program-executor
")
string(REPLACE "<semicolon>" ";" bash "${bash}")
file(WRITE ${OUTPUT_DIR}/program-executor.bash-completion "${bash}")

# ---- zsh completion ----------------------------------------------------------------
function(pe_zsh_quote out text)
  string(REPLACE "'" "'\\''" text "${text}")
  string(REPLACE "[" "\\[" text "${text}")
  string(REPLACE "]" "\\]" text "${text}")
  string(REPLACE ":" "\\:" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()
set(zsh "#compdef program-executor
# zsh completion for program-executor; generated from its --help texts by
# cmake/GenerateCliDocs.cmake.
local -a subcommands
subcommands=(
")
foreach(name ${commands})
  pe_zsh_quote(summary "${summary_${name}}")
  string(APPEND zsh "  '${name}:${summary}'\n")
endforeach()
string(APPEND zsh ")
if (( CURRENT == 2 )); then
  _describe -t commands 'program-executor command' subcommands
  return
fi
case \$words[2] in
")
foreach(name ${commands})
  set(specs "")
  foreach(option ${options_${name}})
    string(REPLACE "|" ";" parts "${option}")
    list(GET parts 0 flags)
    list(GET parts 1 argument)
    list(GET parts 2 choices)
    list(GET parts 3 description)
    pe_zsh_quote(description "${description}")
    set(action "")
    if(NOT argument STREQUAL "")
      if(flags MATCHES "--config|file")
        set(action ":file:_files")
      elseif(NOT choices STREQUAL "")
        set(action ":value:(${choices})")
      else()
        set(action ":value:")
      endif()
    endif()
    string(REPLACE "," ";" flag_list "${flags}")
    list(LENGTH flag_list flag_count)
    if(flag_count GREATER 1)
      string(REPLACE "," " " flag_words "${flags}")
      string(REPLACE "," "," flag_braces "${flags}")
      string(APPEND specs " \\\n      '(${flag_words})'{${flag_braces}}'[${description}]${action}'")
    else()
      string(APPEND specs " \\\n      '${flags}[${description}]${action}'")
    endif()
  endforeach()
  string(APPEND zsh "  ${name})\n    _arguments -s${specs} \\\n      '*::argument:_default' ;;\n")
endforeach()
string(APPEND zsh "esac
")
string(REPLACE "<semicolon>" ";" zsh "${zsh}")
file(WRITE ${OUTPUT_DIR}/_program-executor "${zsh}")

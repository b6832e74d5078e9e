# Writes a C++ source that holds files as byte arrays, so a program ships its
# web console, documents and schema migrations inside its binary (no files to
# install, nothing a deploy can forget, no generated copy to keep in step by
# hand). Run as a script at build time:
#   cmake -DOUTPUT=out.cpp -DHEADER=module/x.hpp -DNAMESPACE=ns -DFILES="a.html;b.js" -DBASE_DIR=dir
#         -P EmbedFiles.cmake
# The source defines `const std::vector<EmbeddedFile>& embedded_files()` in
# NAMESPACE, declared by HEADER (EmbeddedFile is program_executor/embedded_file.hpp,
# which HEADER includes), each file named by its path relative to BASE_DIR.
foreach(var OUTPUT HEADER NAMESPACE FILES BASE_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "EmbedFiles.cmake: ${var} is not set")
  endif()
endforeach()

set(body "// Generated at build time by cmake/EmbedFiles.cmake: do not edit.\n")
string(APPEND body "#include \"${HEADER}\"\n\nnamespace ${NAMESPACE} {\nnamespace {\n\n")
set(index 0)
set(table "")
foreach(file IN LISTS FILES)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # Two hex digits per byte become "0x..,"; sixteen bytes per line.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
  file(RELATIVE_PATH name "${BASE_DIR}" "${file}")
  string(APPEND body "// ${name}\nconst unsigned char file_${index}[] = {\n${bytes}0x00};\n\n")
  string(APPEND table "      {\"${name}\", std::string_view(reinterpret_cast<const char*>(file_${index}), ${size})},\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND body "}  // namespace\n\nconst std::vector<EmbeddedFile>& embedded_files() {\n")
string(APPEND body "  static const std::vector<EmbeddedFile> files = {\n${table}  };\n  return files;\n}\n\n")
string(APPEND body "}  // namespace ${NAMESPACE}\n")

# Rewritten only when it changes, so unchanged files rebuild nothing.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
  if(previous STREQUAL body)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${body}")

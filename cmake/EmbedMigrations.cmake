# Script mode: cmake -DSRC_DIR=... -DOUT=... -P EmbedMigrations.cmake
# Writes a C++ file that returns every migrations/NNNN_*.sql file's name and text, so the binary
# carries its schema and `infergate migrate` needs no files next to it.
file(GLOB files RELATIVE "${SRC_DIR}" "${SRC_DIR}/*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  file(READ "${SRC_DIR}/${f}" text)
  string(FIND "${text}" ")IGSQL\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${f} contains the raw-string delimiter )IGSQL\"")
  endif()
  string(APPEND body "      {\"${f}\", R\"IGSQL(${text})IGSQL\"},\n")
endforeach()
set(content "// Generated from migrations/ by cmake/EmbedMigrations.cmake. Do not edit.
#include \"infergate/infra/migrations.h\"

namespace infergate::infra {

const std::vector<Migration>& embedded_migrations() {
  static const std::vector<Migration> all = [] {
    std::vector<Migration> v{
${body}    };
    validate_migrations(v);
    return v;
  }();
  return all;
}

}  // namespace infergate::infra
")
include("${CMAKE_CURRENT_LIST_DIR}/WriteIfChanged.cmake")
write_if_changed("${OUT}" "${content}")

# write_if_changed(PATH CONTENT): rewrites PATH only when CONTENT differs, so that generated
# sources do not trigger rebuilds when nothing changed.
function(write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
  else()
    set(old "")
  endif()
  if(NOT old STREQUAL content)
    file(WRITE "${path}" "${content}")
  endif()
endfunction()

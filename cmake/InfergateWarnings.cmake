# Warnings for our own targets: on everywhere, clean, and errors under INFERGATE_WERROR (CI).
function(infergate_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
      -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough
      # GCC 12 reports impossible overlaps inside std::string's operator+ at -O2
      # (GCC bug 105329); the warning has no true positives in our code.
      -Wno-restrict
      # GCC 12 misreads Asio's recycling allocator (operator new paired with its own free path)
      # as a mismatched new/delete when coroutine frames are inlined.
      -Wno-mismatched-new-delete>)
  if(INFERGATE_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endfunction()

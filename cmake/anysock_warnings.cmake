# Flags for anysock's own targets: warnings are errors; optional sanitizers.
function(anysock_target_flags target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Werror)
  if(ANYSOCK_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${ANYSOCK_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${ANYSOCK_SANITIZE})
  endif()
endfunction()

# Project-wide warning and sanitizer flags (applied to our targets only, never to system headers).
set(RG_WARNING_FLAGS -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wcast-align
    -Woverloaded-virtual -Wformat=2 -Wno-missing-field-initializers)
if(RG_WERROR)
  list(APPEND RG_WARNING_FLAGS -Werror)
endif()

function(rg_target_defaults target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${RG_WARNING_FLAGS}>)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra
                         $<$<BOOL:${RG_WERROR}>:-Werror>>)
endfunction()

if(RG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

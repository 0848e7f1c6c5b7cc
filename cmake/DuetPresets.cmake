# The simulator's built-in memory maps: scenarios/maps/NAME.e820 becomes preset NAME in the
# file OUT, made from sim/presets.cpp.in. For sim/ and the fuzz project alike.
function(duet_write_presets root out)
    file(GLOB files CONFIGURE_DEPENDS ${root}/scenarios/maps/*.e820)
    list(SORT files)
    set(DUET_PRESET_ENTRIES "")
    foreach(path IN LISTS files)
        get_filename_component(name ${path} NAME_WE)
        file(READ ${path} text)
        string(APPEND DUET_PRESET_ENTRIES "    {\"${name}\", R\"duet_map(${text})duet_map\"},\n")
    endforeach()
    configure_file(${root}/sim/presets.cpp.in ${out} @ONLY)
endfunction()

"""Looking inside built files without running them: ELF headers, sections, symbols and
versions (:mod:`.elf`), the program headers, dynamic section and relocations the loader reads
(:mod:`.dynamic`), a Go binary's build information (:mod:`.goinfo`), what GNU readelf and nm
say (:mod:`.binutils`), abidiff's report and struct layouts from DWARF (:mod:`.abi`), and
AddressSanitizer's report (:mod:`.asan`)."""

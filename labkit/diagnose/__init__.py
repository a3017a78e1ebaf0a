"""Will this file load, and if not, why: glibc's loader followed on the files (:mod:`.loader`:
search order, every dependency, refusals), its version check and relocation pass
(:mod:`.binding`), the static TLS surplus (:mod:`.statictls`), the Go runtime's rules for
``plugin.Open`` (:mod:`.goplugin`), a reason in plain words (:mod:`.problem`, :mod:`.why`),
the verdict ``python -m labkit explain`` prints (:mod:`.verdict`), and the real loader's own
account of a dlopen, ``LD_DEBUG`` read into tables (:mod:`.trace`), to hold the model to."""

"""The notebooks' face: the command line (:mod:`.cli`: doctor, warm, explain, abi-diff, bench),
the environment check (:mod:`.doctor`), the warm-up Binder runs (:mod:`.warm`), the notebook
map (:mod:`.notebooks`), the bench (:mod:`.bench`, its C and Go hosts :mod:`.benchhosts`, its
figures :mod:`.figures`), the trade-off table (:mod:`.choose`), widgets and cell magics
(:mod:`.widgets`, :mod:`.magics`), and the exercises (:mod:`.exercises`)."""

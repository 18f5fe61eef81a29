"""Word lists for the document filters: the project's own lists, written for this project.

``STOPWORDS`` holds about 230 common English function words (articles, pronouns, auxiliary
and modal verbs, prepositions, conjunctions, determiners, common adverbs and contractions).
``FLAGGED_WORDS`` is a deliberately short, clinical list of explicit adult-content terms; a
text node or document made largely of them is probably not prose worth training on.

Both are matched against words that are lower-cased, with typographic apostrophes turned
into ``'`` and punctuation stripped from both ends (see
``vlcurate.pipeline.docs.filters.normalise``).
"""

STOPWORDS = frozenset(
    """
    a an the this that these those
    i me my mine myself we us our ours ourselves you your yours yourself yourselves
    he him his himself she her hers herself it its itself they them their theirs themselves
    who whom whose which what whatever whoever
    am is are was were be been being
    have has had having do does did doing done
    will would shall should can could may might must ought
    and or but nor so yet if then else because as until while although though unless whether
    of at by for with about against between into through during before after above below
    to from up down in out on off over under again further once onto upon within without
    along across among around behind beyond toward towards via per than like
    here there when where why how all any both each few more most other some such
    no not only own same too very just also even ever still already always never often
    now soon well much many less least one ones another
    anyway however therefore thus hence instead rather quite almost
    s t don't doesn't didn't isn't aren't wasn't weren't won't wouldn't can't cannot couldn't
    shouldn't haven't hasn't hadn't mustn't i'm i've i'd i'll you're you've you'd you'll
    he's she's it's we're we've we'd we'll they're they've they'd they'll that's there's
    what's who's let's here's
    """.split()
)

FLAGGED_WORDS = frozenset(
    """
    porn porno pornography pornographic xxx nsfw hentai erotica
    blowjob blowjobs handjob handjobs cumshot cumshots creampie gangbang bukkake
    dildo dildos masturbate masturbating masturbation orgasm orgasms
    camgirl camgirls escorts milf milfs threesome
    """.split()
)

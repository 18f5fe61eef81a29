"""Words for the mini web: page text, titles, captions in other languages, junk alt text."""

# Filler prose that pages are filled with, per language (of the page): sentence templates whose
# {slots} are filled from FILLER_SLOTS. A page draws its templates and slot values from shuffled
# decks (see pages._Filler), so its paragraphs seldom repeat a sentence or a five-word run: real
# pages do not, and OBELICS's repetition rules drop those that do. English sentences are plain
# prose, with the share of function words (vlcurate.pipeline.docs.words.STOPWORDS) that prose
# has; no template shares a run of five words with another, and none names a colour or a kind of
# shape, so that a picture's own description stays the sentence that fits it best.
FILLER = {
    "en": (
        "{when}, {who} {made} some of the {things} that you can find on this page.",
        "We are {glad} to show you the {things} that {who} {made} for us {when}.",
        "Each of these {things} took {span} to finish, and we think it was time well spent.",
        "If you want to try this at home, all you need is {tool} and a little patience.",
        "Some of the {things} here were made with {tool}, while others were made on a computer.",
        "We asked {who} to tell us what they saw in each one, and their answers were a surprise.",
        "It is not always easy to say why one picture feels {adj} and another does not.",
        "There is no right or wrong way to look at these {things}, so take your time.",
        "Many of the {things} on this page began as a simple idea about {topic}.",
        "When we put this page together, we kept the {things} in the order they came to us.",
        "A lot of you have written to ask about {topic}, so we will come back to it soon.",
        "Most of the {things} were made at {place}, where there is always room to spread out.",
        "You may notice that the {things} in this part of the gallery are {adj}, which is just "
        "what we wanted.",
        "We do not change the {things} that people send in, apart from making them a bit smaller.",
        "This is one of our favourite pages, because it shows how much can be done with {tool}.",
        "If you have {things} of your own that you would like to share, please send them in.",
        "Not all of these {things} are finished, and we like them all the more for it.",
        "Our hope is that {reader} will find something here to enjoy, and perhaps to copy.",
        "Some of the colours may look a bit different on your screen than they did on paper.",
        "You can click on any picture to see it at its full size.",
        "It was {who} who first gave us the idea for this page, {when}.",
        "We think that {reader} will like the way these {things} are built from a few parts.",
        "There are more {things} like these in our archive, and we will add some of them soon.",
        "As always, our thanks go to {who} for their help with this page.",
        "The {things} below are sorted by colour rather than by the day on which they were made.",
        "Before you scroll down, have a look at how each of them is put together.",
        "One of the things we like most about {things} such as these is that they are so {adj}.",
        "There is a short description under each picture for those who use a screen reader.",
        "None of the {things} shown here may be used elsewhere without asking us first.",
        "If a picture does not load, please try again in a few minutes.",
        "This page is part of a series about {topic}, and there is more to come.",
        "For this page we chose {things} that are {adj} rather than busy or crowded.",
        "It is surprising how much a picture can change when only one of its colours is new.",
        "We spent {span} at {place} sorting through all of the {things} that arrived {when}.",
        "A few of these {things} were made by {who}, and the rest by our own small team.",
        "Do you have a favourite among them? We would be {glad} to hear which one it is.",
        "Our newsletter comes out once a month, and it always has a few of the best {things}.",
        "We try to add new {things} to the gallery every week, but now and then it takes longer.",
        "The idea is simple: a few shapes, a few colours, and as much care as you can give.",
        "Please be kind in the comments, as many of the people who send us {things} are still "
        "learning.",
        "Some of you like to print these {things} and put them up on a wall at home.",
        "We were {glad} with how {adj} the {things} turned out, and we hope you will be too.",
        "Looking at {things} like these is a good way to talk with {reader} about {topic}.",
        "If you are new here, you may want to start with the older pages of the archive.",
        "There is a lot to see on this page, so do not worry if you cannot take it all in at once.",
        "Everything we show on these pages was made {when} by {who}.",
        "What we enjoy about this set is that no two of them are quite the same.",
        "We have kept the titles that {who} gave to their {things}, even the odd ones.",
    ),
    "fr": (
        "Voici quelques {chose} de notre galerie, ajoutées {quand}.",
        "{quand}, {qui} nous a envoyé de nouvelles {chose}.",
        "Les couleurs de ces {chose} peuvent varier selon votre écran.",
        "Merci à {qui} pour ces belles {chose}.",
        "Chaque semaine, nous ajoutons de nouvelles {chose} à la collection.",
        "Cliquez sur une image pour la voir en grand format.",
        "Toutes les {chose} de cette page ont été faites à la main par {qui}.",
        "Nous aimons beaucoup les {chose} simples et lumineuses.",
        "N'hésitez pas à nous écrire si vous souhaitez partager vos propres {chose}.",
        "Ces {chose} ont été choisies pour leurs formes simples et leurs couleurs vives.",
    ),
    "de": (
        "Hier finden Sie einige {ding} aus unserer Sammlung.",
        "{wann} hat uns {wer} neue {ding} geschickt.",
        "Jede Woche fügen wir neue {ding} hinzu.",
        "Die Farben der {ding} können auf Ihrem Bildschirm anders aussehen.",
        "Vielen Dank an alle, die uns {ding} geschickt haben.",
        "Klicken Sie auf ein Bild, um es in voller Größe zu sehen.",
        "Alle {ding} auf dieser Seite wurden {wann} von Hand gemacht.",
        "Wir mögen einfache {ding} mit klaren Formen und kräftigen Farben.",
        "Schreiben Sie uns, wenn Sie eigene {ding} zeigen möchten.",
        "Diese {ding} wurden wegen ihrer einfachen Formen ausgewählt.",
    ),
    "es": (
        "Aquí tienes algunas {cosa} de nuestra galería.",
        "{cuando}, {quien} nos envió nuevas {cosa}.",
        "Cada semana añadimos nuevas {cosa} a la colección.",
        "Los colores de estas {cosa} pueden variar según tu pantalla.",
        "Gracias a {quien} por estas {cosa} tan bonitas.",
        "Haz clic en una imagen para verla en tamaño completo.",
        "Todas las {cosa} de esta página se hicieron a mano {cuando}.",
        "Nos gustan las {cosa} sencillas, con formas claras y colores vivos.",
        "Escríbenos si quieres compartir tus propias {cosa}.",
        "Elegimos estas {cosa} por sus formas sencillas.",
    ),
}

# The values of FILLER's {slots}, per language, separated by " | ". A template that starts with a
# slot gets its first letter capitalised.
_SLOT_VALUES = {
    "en": {
        "when": (
            "last week | this spring | over the summer | in the autumn | a few days "
            "ago | earlier this year | on a rainy afternoon | during the school "
            "holidays | at the start of the month | just before the winter break | "
            "over a long weekend | in the first week of June"
        ),
        "who": (
            "our readers | a few of our friends | the children in the Tuesday class | "
            "two of our volunteers | a local art club | the people who visit us | one "
            "of our oldest members | a teacher from the next town | a family from down "
            "the road | the students at the evening school"
        ),
        "made": (
            "drew | painted | sent us | put together | made | picked out | cut out | coloured in"
        ),
        "things": (
            "pictures | drawings | sketches | prints | cards | posters | paintings | "
            "small studies | collages"
        ),
        "adj": (
            "bright | calm | cheerful | simple | playful | quiet | bold | careful | tidy | friendly"
        ),
        "place": (
            "the kitchen table | a school hall | the town library | a small studio | "
            "a garden shed | a community centre | a friend's house | an old barn"
        ),
        "topic": (
            "the way light falls on a wall | how colours change at dusk | what makes a "
            "shape look heavy | how to draw a straight line by hand | why some colours "
            "seem to move | the difference between a sketch and a plan | how a few "
            "lines can suggest a face | how to mix paint without a palette"
        ),
        "reader": (
            "you | your children | anyone who is new to drawing | a younger reader | "
            "those of you who teach | your friends"
        ),
        "tool": (
            "a soft pencil | a set of wax crayons | an old brush | a ruler and a "
            "compass | a box of chalk | a tablet and a stylus | scissors and some "
            "coloured paper | a pot of poster paint"
        ),
        "glad": "happy | glad | proud | pleased | delighted",
        "span": (
            "a few minutes | an hour or so | most of an afternoon | the whole morning "
            "| two or three evenings | about a week"
        ),
    },
    "fr": {
        "chose": "images | illustrations | peintures | esquisses | affiches | cartes",
        "qui": (
            "une lectrice de Lyon | un ami du quartier | notre club de dessin | une "
            "classe de l'école voisine | un fidèle visiteur | une famille de la région"
        ),
        "quand": (
            "la semaine dernière | ce printemps | pendant les vacances | au début du "
            "mois | il y a quelques jours | cet hiver"
        ),
    },
    "de": {
        "ding": "Bilder | Zeichnungen | Skizzen | Grafiken | Drucke | Postkarten",
        "wer": (
            "eine Leserin aus Köln | ein Freund aus der Nachbarschaft | unser "
            "Zeichenkurs | eine Schulklasse aus dem Nachbarort | ein treuer Besucher | "
            "eine Familie aus der Gegend"
        ),
        "wann": (
            "letzte Woche | im Frühling | in den Ferien | Anfang des Monats | vor ein "
            "paar Tagen | im Winter"
        ),
    },
    "es": {
        "cosa": "imágenes | ilustraciones | pinturas | postales | láminas | acuarelas",
        "quien": (
            "una lectora de Sevilla | un amigo del barrio | nuestro taller de dibujo | "
            "una clase de la escuela vecina | un visitante fiel | una familia de la "
            "zona"
        ),
        "cuando": (
            "la semana pasada | esta primavera | durante las vacaciones | a principios "
            "de mes | hace unos días | este invierno"
        ),
    },
}
FILLER_SLOTS = {
    lang: {slot: tuple(v.split(" | ")) for slot, v in slots.items()}
    for lang, slots in _SLOT_VALUES.items()
}

TITLES = {
    "en": (
        "Shapes and colours",
        "Picture of the day",
        "Our gallery",
        "New this week",
        "Learning shapes",
        "Reader photos",
        "From the archive",
        "Colour studies",
    ),
    "fr": ("Formes et couleurs",),
    "de": ("Formen und Farben",),
    "es": ("Formas y colores",),
}

NAV = {
    "en": ("Home", "Gallery", "About", "Contact"),
    "fr": ("Accueil", "Galerie", "À propos", "Contact"),
    "de": ("Startseite", "Galerie", "Über uns", "Kontakt"),
    "es": ("Inicio", "Galería", "Acerca de", "Contacto"),
}

FOOTER = {
    "en": "© 2024 Mini Web Gallery. All rights reserved.",
    "fr": "© 2024 Mini Web Galerie. Tous droits réservés.",
    "de": "© 2024 Mini-Web-Galerie. Alle Rechte vorbehalten.",
    "es": "© 2024 Galería Mini Web. Todos los derechos reservados.",
}

FIGURE = {"en": "Fig.", "fr": "Fig.", "de": "Abb.", "es": "Fig."}

# How pages in each language are encoded: German pages are windows-1252, as many old sites are.
CHARSETS = {"en": "utf-8", "fr": "utf-8", "de": "windows-1252", "es": "utf-8"}

# Scenes captioned in another language: (language, groups of (kind, color, count), background,
# relation, whether the caption names the background, the caption).
FOREIGN_SCENES = (
    ("fr", [("circle", "red", 2)], "blue", None, True, "deux cercles rouges sur un fond bleu"),
    (
        "fr",
        [("triangle", "green", 1), ("square", "yellow", 1)],
        "white",
        "above",
        False,
        "un triangle vert au-dessus d'un carré jaune",
    ),
    (
        "de",
        [("circle", "blue", 3)],
        "yellow",
        None,
        True,
        "drei blaue Kreise auf gelbem Hintergrund",
    ),
    ("de", [("square", "red", 1)], "white", None, True, "ein rotes Quadrat auf weißem Hintergrund"),
    (
        "es",
        [("star", "yellow", 1)],
        "blue",
        None,
        True,
        "una estrella amarilla sobre un fondo azul",
    ),
    (
        "es",
        [("triangle", "red", 2)],
        "black",
        None,
        True,
        "dos triángulos rojos sobre un fondo negro",
    ),
)

# Alt text that says nothing about the image. "" is rendered once as alt="" and once with no
# alt attribute at all.
JUNK_ALTS = ("IMG_2031.JPG", "image", "click here", "", "12345", "DSC_0042.jpg", "photo", "")

# Wrong captions for the mismatched photos (in the order of images.MISMATCH_PHOTOS).
WRONG_PHOTO_CAPTIONS = (
    "a bowl of ramen with a boiled egg",
    "a golden retriever playing in the snow",
    "a red sports car parked on a city street",
)

# <img> URLs on private, link-local and loopback-alias hosts: nothing may ever request them.
PRIVATE_URLS = (
    ("http://169.254.169.254/latest/meta-data/", "instance metadata"),
    ("http://10.0.0.7/a.jpg", "a photo of our office"),
    ("http://[::1]:8080/x.png", "a diagram of the network"),
    ("http://2130706433/x.jpg", "a picture of a sunset over the sea"),
    ("http://localhost/x.jpg", "a photo of a mountain lake"),
)

# Captions for images that are not there (404) or are not images.
MISSING_CAPTIONS = (
    "a lighthouse on a rocky coast at sunset",
    "children playing football in a park",
)
NOT_IMAGE_CAPTIONS = (
    "a basket of fresh vegetables at a market",
    "an old steam train crossing a bridge",
)

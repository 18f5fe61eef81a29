"""Words for the mini web: page text, titles, captions in other languages, junk alt text."""

# Sentences that pages are filled with, per language (of the page).
SENTENCES = {
    "en": (
        "We collected these pictures over the last few months.",
        "Every image on this page was made for a small test of our gallery software.",
        "Some of the pictures below are photographs, others are simple drawings.",
        "Scroll down to see more of the collection.",
        "Our readers sent in many of these images, and we thank them for it.",
        "The colours may look different on your screen.",
        "Click on any picture to open it in full size.",
        "Shapes and colours are a good way to teach children to describe what they see.",
        "This page is updated every week with new material.",
        "Please do not reuse these images without asking first.",
        "A short description accompanies each image for readers who use screen readers.",
        "We also publish a newsletter with the best pictures of the month.",
    ),
    "fr": (
        "Voici quelques images de notre galerie.",
        "Chaque semaine, nous ajoutons de nouvelles illustrations.",
        "Les couleurs peuvent varier selon votre écran.",
        "Merci à nos lecteurs pour leurs contributions.",
    ),
    "de": (
        "Hier finden Sie einige Bilder aus unserer Sammlung.",
        "Jede Woche fügen wir neue Grafiken hinzu.",
        "Die Farben können auf Ihrem Bildschirm anders aussehen.",
        "Vielen Dank an unsere Leserinnen und Leser für ihre Beiträge.",
    ),
    "es": (
        "Aquí tienes algunas imágenes de nuestra galería.",
        "Cada semana añadimos nuevas ilustraciones.",
        "Los colores pueden variar según tu pantalla.",
        "Gracias a nuestros lectores por sus aportaciones.",
    ),
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

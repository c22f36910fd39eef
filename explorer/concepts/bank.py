"""Built-in sentence banks for workshops, and the token analogy set.

Each bank is a few dozen short sentences in one register, so nearest-sentence lookups and
sentence arithmetic have something meaningful to land on. ``ANALOGIES`` holds ``a : b :: c : d``
items (``king : man :: queen : woman``: ``king − man + woman ≈ queen``) for measuring how linear a
token space is.
"""
from __future__ import annotations

BANKS: dict[str, tuple[str, ...]] = {
    # tiny stories: one event each, recurring characters and places
    "stories": (
        "The little cat chased a red ball across the garden.",
        "A small dog slept in the sun all afternoon.",
        "The girl found a shiny key under the old tree.",
        "A boy built a tall tower out of wooden blocks.",
        "The dragon flew over the mountains at night.",
        "The princess rode her horse to the castle.",
        "A king sat alone on his golden throne.",
        "The queen walked through the quiet palace gardens.",
        "The old fisherman caught a huge fish at dawn.",
        "A bird sang a happy song on the windowsill.",
        "The children played in the snow until dark.",
        "The boy lost his kite in the strong wind.",
        "The girl baked a chocolate cake for her mother.",
        "A tiny mouse hid from the cat behind the door.",
        "The robot learned to dance at the school party.",
        "The pirate buried his treasure on a sandy island.",
        "A frog jumped into the pond with a loud splash.",
        "The farmer fed the cows early in the morning.",
        "The wizard turned the stone into a golden apple.",
        "Two friends shared a sandwich on the park bench.",
        "The baby laughed when the puppy licked her face.",
        "The knight fought the dragon to save the village.",
        "A rabbit ate carrots in the vegetable garden.",
        "The girl read a book about the stars before bed.",
        "The boy was afraid of the dark forest.",
        "The cat was happy to sleep on the warm blanket.",
        "The rain stopped and a rainbow filled the sky.",
        "The teacher smiled when the class sang together.",
        "A bear found honey in a hollow tree.",
        "The ship sailed across the stormy sea.",
    ),
    # simple facts: capitals, science, animals
    "facts": (
        "Paris is the capital of France.",
        "Berlin is the capital of Germany.",
        "Rome is the capital of Italy.",
        "Madrid is the capital of Spain.",
        "Tokyo is the capital of Japan.",
        "London is the capital of England.",
        "Water boils at one hundred degrees Celsius.",
        "Water freezes at zero degrees Celsius.",
        "The Earth goes around the Sun.",
        "The Moon goes around the Earth.",
        "A spider has eight legs.",
        "An insect has six legs.",
        "Whales are mammals that live in the sea.",
        "Penguins are birds that cannot fly.",
        "Bats are mammals that can fly.",
        "Plants need sunlight to grow.",
        "The heart pumps blood through the body.",
        "Iron is a metal that can rust.",
        "Gold is a metal that does not rust.",
        "A triangle has three sides.",
        "A square has four equal sides.",
        "There are seven days in a week.",
        "There are twelve months in a year.",
        "Ice is frozen water.",
        "The Pacific is the largest ocean.",
        "Mount Everest is the highest mountain.",
        "Sound travels faster in water than in air.",
        "Light travels faster than sound.",
        "Bees make honey from nectar.",
        "Cows give milk.",
    ),
    # sentiment: positive, negative and neutral opinions on everyday things
    "sentiment": (
        "I loved this movie from start to finish.",
        "This film was a complete waste of time.",
        "The food at this restaurant is delicious.",
        "The food was cold and tasted terrible.",
        "The hotel room was clean and comfortable.",
        "The hotel room was dirty and noisy.",
        "What a wonderful day at the beach!",
        "What an awful day, everything went wrong.",
        "The service was friendly and fast.",
        "The service was rude and very slow.",
        "This phone works perfectly and the battery lasts forever.",
        "This phone broke after two days.",
        "I am so happy with my new bike.",
        "I am very disappointed with this purchase.",
        "The concert was amazing and the crowd was great.",
        "The concert was boring and too loud.",
        "The book was fascinating and beautifully written.",
        "The book was dull and hard to finish.",
        "My team won the game and I feel fantastic.",
        "My team lost again and I feel miserable.",
        "The weather is lovely and warm today.",
        "The weather is cold, grey and depressing.",
        "This is the best coffee I have ever had.",
        "This coffee is bitter and undrinkable.",
        "The meeting is at three o'clock.",
        "The store opens at nine in the morning.",
        "The train leaves from platform two.",
        "The package arrived on Tuesday.",
        "The museum is closed on Mondays.",
        "The report has ten pages.",
    ),
}

#: (a, b, c, d): a − b + c should be nearest to d. Words get a leading space when used as tokens.
ANALOGIES: tuple[tuple[str, str, str, str], ...] = (
    # gender
    ("king", "man", "woman", "queen"),
    ("queen", "woman", "man", "king"),
    ("boy", "man", "woman", "girl"),
    ("brother", "boy", "girl", "sister"),
    ("father", "man", "woman", "mother"),
    ("son", "father", "mother", "daughter"),
    ("uncle", "man", "woman", "aunt"),
    ("husband", "man", "woman", "wife"),
    ("prince", "king", "queen", "princess"),
    ("he", "man", "woman", "she"),
    # capitals
    ("Paris", "France", "Germany", "Berlin"),
    ("Berlin", "Germany", "Italy", "Rome"),
    ("Rome", "Italy", "Spain", "Madrid"),
    ("Madrid", "Spain", "Japan", "Tokyo"),
    ("Tokyo", "Japan", "France", "Paris"),
    ("London", "England", "Russia", "Moscow"),
    ("Moscow", "Russia", "China", "Beijing"),
    ("Beijing", "China", "Egypt", "Cairo"),
    # plurals
    ("cats", "cat", "dog", "dogs"),
    ("cars", "car", "house", "houses"),
    ("books", "book", "tree", "trees"),
    ("apples", "apple", "bird", "birds"),
    ("hands", "hand", "eye", "eyes"),
    ("days", "day", "year", "years"),
    ("boys", "boy", "girl", "girls"),
    ("kings", "king", "queen", "queens"),
    # tenses
    ("walked", "walk", "play", "played"),
    ("jumped", "jump", "talk", "talked"),
    ("went", "go", "see", "saw"),
    ("ran", "run", "eat", "ate"),
    ("took", "take", "give", "gave"),
    ("walking", "walk", "run", "running"),
    ("playing", "play", "read", "reading"),
    ("looked", "look", "work", "worked"),
    # comparatives and opposites
    ("bigger", "big", "small", "smaller"),
    ("taller", "tall", "short", "shorter"),
    ("good", "better", "worse", "bad"),
    ("hot", "cold", "dark", "light"),
    ("happy", "sad", "bad", "good"),
    ("up", "down", "left", "right"),
)


def bank(name: str) -> tuple[str, ...]:
    """One built-in bank by name (``stories``, ``facts``, ``sentiment``) or ``all`` of them."""
    from ..errors import InputError

    if name == "all":
        return tuple(s for b in BANKS.values() for s in b)
    if name not in BANKS:
        raise InputError(f"no built-in bank {name!r}; choose one of {sorted(BANKS)} or 'all'.")
    return BANKS[name]


def prosqa_statements() -> list[str]:
    """Every statement the ProsQA vocabulary can make ("Tom is a wumpus.", "Every wumpus is a
    yumpus."), in a fixed order: the autoencoder's and the next-concept model's sentence set."""
    from ..tasks.prosqa.generate import CONCEPTS, PERSONS

    out = [f"{p} is a {c}." for p in PERSONS for c in CONCEPTS]
    out += [f"Every {a} is a {b}." for a in CONCEPTS for b in CONCEPTS if a != b]
    return out


__all__ = ["BANKS", "ANALOGIES", "bank", "prosqa_statements"]

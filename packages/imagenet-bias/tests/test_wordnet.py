"""WordNet distances on known pairs, and the data.noun parser on a hand-written file."""

from dldiy_imagenet_bias.wordnet import WordNet

TINY = """  1 This software and database is being provided to you, the LICENSEE
00000001 03 n 01 entity 0 000 | that which exists
00000002 05 n 01 animal 0 001 @ 00000001 n 0000 | a living thing
00000003 05 n 02 dog 0 domestic_dog 0 001 @ 00000002 n 0000 | a canine
00000004 05 n 01 cat 0 001 @ 00000002 n 0000 | a feline
00000005 05 n 01 Rex 0 001 @i 00000003 n 0000 | a particular dog
"""


def test_parser_reads_lemmas_hypernyms_and_instances():
    wn = WordNet.parse(TINY.splitlines(keepends=True))
    assert wn.words["n00000003"] == ["dog", "domestic dog"]
    assert wn.hypernyms["n00000005"] == ["n00000003"]
    assert wn.distance("n00000003", "n00000004") == 2
    assert wn.distance("n00000005", "n00000004") == 3
    assert wn.lowest_common_ancestor("n00000005", "n00000004") == "n00000002"
    assert wn.lookup("domestic_dog") == ["n00000003"]


def test_known_imagenet_pairs(wordnet):
    tabby, tiger_cat, persian = "n02123045", "n02123159", "n02123394"
    husky, malamute, espresso = "n02110185", "n02110063", "n07920052"
    assert wordnet.name(tabby) == "tabby"
    assert wordnet.distance(tabby, tabby) == 0
    assert wordnet.distance(tabby, persian) == 2  # both domestic cats
    assert wordnet.distance(tabby, tiger_cat) == 2
    assert wordnet.distance(husky, malamute) == 2  # both sled dogs
    assert wordnet.name(wordnet.lowest_common_ancestor(husky, malamute)) == "sled dog"
    assert wordnet.distance(tabby, husky) > wordnet.distance(tabby, persian)
    assert wordnet.distance(tabby, espresso) > wordnet.distance(tabby, husky)
    assert wordnet.is_a(tabby, "n02121808")  # domestic cat

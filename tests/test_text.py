from model.segment import segment
from model.text import char_ngrams, is_traditional, jaccard, normalize


def test_normalize_maps_traditional_and_full_width_and_keeps_length():
    text = "貓池與接碼平臺，ＧＯＩＰ設備１２臺"
    out = normalize(text)
    assert out == "猫池与接码平台,GOIP设备12台"
    assert len(out) == len(text)


def test_is_traditional():
    assert is_traditional("民警衝進出租屋時，屋內兩臺“貓池”設備仍在閃爍")
    assert not is_traditional("民警冲进出租屋时，屋内两台“猫池”设备仍在闪烁")
    assert not is_traditional("GOIP 123")


def test_near_twin_similarity_sees_through_script_differences():
    a = char_ngrams("接码平台为号商提供手机号和验证码")
    b = char_ngrams("接碼平臺為號商提供手機號和驗證碼")
    assert jaccard(a, b) == 1.0


def test_segment_keeps_offsets_into_the_text():
    text = "\n  第一段。\n\n第二段\n第二行  \n \n\n第三段"
    paragraphs = segment(text)
    assert [p.text for p in paragraphs] == ["第一段。", "第二段\n第二行", "第三段"]
    assert all(text[p.start:p.end] == p.text for p in paragraphs)
    assert segment("") == [] and segment(" \n\t\n") == []

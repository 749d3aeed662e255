from heichan.labels.corpus import char_ngrams, jaccard
from heichan.model.segment import segment
from heichan.model.text import is_traditional, normalize


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


def test_segment_keeps_offsets_into_the_cleaned_text():
    article = segment("\n  第一段。\n\n第二段标题\n第二段正文。  \n \n\n第三段", fmt="text")
    assert [p.text for p in article.paragraphs] == ["第一段。", "第二段标题", "第二段正文。", "第三段"]
    assert all(article.text[p.start : p.end] == p.text for p in article.paragraphs)
    assert segment("").paragraphs == [] and segment(" \n\t\n").paragraphs == []


def test_hard_wrapped_lines_are_joined():
    line = "近年来，电信网络诈骗、跨境网络赌博、网络水军等突出网络违法犯罪高发，滋生出由卡商、号商"
    article = segment(f"{line}\n组成的网络账号黑色产业链。\n下一段。", fmt="text")
    assert [p.text for p in article.paragraphs] == [line + "组成的网络账号黑色产业链。", "下一段。"]

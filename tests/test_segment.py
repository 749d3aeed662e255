"""The one segmenter: WeChat boilerplate, HTML, Markdown and numbered case lists."""

import pytest

from heichan.model.markup import detect_format
from heichan.model.segment import segment

CASE_1 = "1、江苏公安机关破获张某等人案。张某等人搭建接码平台，为号商提供验证码。"
CASE_2 = "2、天津公安机关破获韩某等人案。韩某在网上购买微博账号，贩卖给境外诈骗团伙。"

WECHAT = f"""# 【安全圈】公安部公布十大典型案例

![cover_image](https://mmbiz.qpic.cn/x/0?wx_fmt=jpeg)

# 【安全圈】公安部公布十大典型案例

近年来，网络账号黑色产业链严重危害互联网管理秩序。

　　{CASE_1}

**3、四川公安机关破获许某等人案。**许某等人组建“村推”团伙，骗取老年人手机验证码。

***END***

阅读推荐

![](https://mmbiz.qpic.cn/y/640)[【安全圈】弄“料子”薅羊毛终获刑](http://mp.weixin.qq.com/s?x)

预览时标签不可点

微信扫一扫
关注该公众号

：
，
。

赞
，轻点两下取消赞
在看
"""


def texts(article):
    return [p.text for p in article.paragraphs]


def test_wechat_article_keeps_content_and_drops_boilerplate():
    article = segment(WECHAT)
    assert texts(article) == [
        "【安全圈】公安部公布十大典型案例",
        "近年来，网络账号黑色产业链严重危害互联网管理秩序。",
        CASE_1,
        "3、四川公安机关破获许某等人案。许某等人组建“村推”团伙，骗取老年人手机验证码。",
    ]
    assert "微信扫一扫" not in article.text and "薅羊毛终获刑" not in article.text


def test_several_numbered_cases_on_one_line_become_separate_paragraphs():
    for marker_2, marker_3 in (("2、", "3、"), ("二、", "三、"), ("（二）", "（三）")):
        line = f"{CASE_1}{CASE_2.replace('2、', marker_2)}{marker_3}重庆警方破获朱某案。朱某批量注册网络账号。"
        assert len(segment(line, fmt="text").paragraphs) == 3, marker_2


def test_enumerations_inside_a_sentence_are_not_cases():
    text = "打掉接码、打码、解封、养号平台80余个，查获手机卡2.5万张。统一、规范的管理十分重要。"
    assert texts(segment(text, fmt="text")) == [text]


HTML = """---
title: '济南严打网络黑灰产'
date: Mon, 15 Nov 2021 03:05:33 GMT
---
<div><p class="x">原标题：济南严打网络黑灰产</p><p><font>新华社济南11月15日电　近年来，“裸聊”“杀猪盘”花样繁多。</font></p>
<div><div><p>民警发现大量QQ号码被兜售&amp;用于诈骗<br>这些号码系通过接码平台注册。</p></div></div>
<!-- 正文下iframe --><style>.a&#123;color:red&#125;</style><script>var x = "<p>不是正文</p>";</script>
<p>济南警方提醒：切勿出借银行卡。</p></div>"""


def test_html_tags_entities_breaks_and_nested_divs():
    article = segment(HTML)
    assert detect_format(HTML.split("---", 2)[2]) == "html"
    assert texts(article) == [
        "原标题：济南严打网络黑灰产",
        "新华社济南11月15日电 近年来，“裸聊”“杀猪盘”花样繁多。",
        "民警发现大量QQ号码被兜售&用于诈骗",
        "这些号码系通过接码平台注册。",
        "济南警方提醒：切勿出借银行卡。",
    ]
    assert "title:" not in article.text and "color" not in article.text and "不是正文" not in article.text


def test_markdown_links_emphasis_and_lists():
    md = "## 案例\n\n- **猫池**窝点被端，详见[通报](http://x.invalid/1)。\n- 游戏\n- 民警\n\n> 民警提醒：不要出借手机卡。"
    assert texts(segment(md)) == ["案例", "猫池窝点被端，详见通报。", "民警提醒：不要出借手机卡。"]


@pytest.mark.parametrize("fmt", ["text", "html", "markdown"])
def test_explicit_formats_keep_plain_text(fmt):
    assert texts(segment("民警查获猫池设备6台。", fmt=fmt)) == ["民警查获猫池设备6台。"]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        segment("x", fmt="pdf")

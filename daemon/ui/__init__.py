"""What the kiosk's OLED shows: screens described as data, drawn with bitmap fonts into 1-bit images.

`screens.Screen` describes a screen (its kind, a headline, small lines, the accepted card read
methods, the two buttons' labels, a corner badge); `screens.render` draws it for a 128x64 or a
128x32 panel. `catalog` builds the screens with their wording, `money.format_amount` writes
amounts, and `examples` names one screen of every kind (docs/screens.md shows them all). Which
screen to show when is the controller's business; these modules only decide how a screen looks.
"""
